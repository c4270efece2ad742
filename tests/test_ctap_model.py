"""CTAP model parts and losses on tensors the tests make."""

from __future__ import annotations

import math

import pytest
import torch

from speechbench.ctap.config import ModelConfig
from speechbench.ctap.data import PhoneVocabulary, frame_alignment, run_length
from speechbench.ctap.losses import (
    ctap_losses,
    frame_contrastive_loss,
    frame_phone_targets,
    kl_with_margin,
    masked_mel_mse,
)
from speechbench.ctap.model import (
    CTAP,
    DurationPredictor,
    length_regulate,
    mel_frames,
    speech_frames,
)


def tiny_config(**changes) -> ModelConfig:
    base = dict(
        n_mels=20,
        d_model=32,
        speech_layers=2,
        heads=2,
        ff_dim=64,
        joint_dim=32,
        phone_layers=1,
        duration_channels=16,
        prompt_channels=16,
        prompt_latent=8,
        decoder_dim=32,
        decoder_layers=1,
        decoder_conv_layers=1,
        n_phones=12,
        dropout=0.0,
    )
    base.update(changes)
    return ModelConfig(**base)


def make_batch(config: ModelConfig, batch: int = 3, seconds=(1.0, 0.7, 0.45), seed: int = 0):
    torch.manual_seed(seed)
    n = [int(s * 16000) for s in seconds[:batch]]
    wavs = torch.zeros(batch, max(n))
    for i, k in enumerate(n):
        wavs[i, :k] = 0.1 * torch.randn(k)
    model = CTAP(config)
    mel_lengths = mel_frames(torch.tensor(n))
    mel = torch.nn.utils.rnn.pad_sequence(
        [model.features(wavs[i, :k][None])[0].T for i, k in enumerate(n)], batch_first=True
    ).transpose(1, 2)
    t50 = speech_frames(mel_lengths)
    phones, durations = [], []
    for t in t50.tolist():
        k = max(2, t // 5)
        d = torch.full((k,), t // k)
        d[-1] += t - int(d.sum())
        phones.append(torch.randint(2, config.n_phones, (k,)))
        durations.append(d)
    pad = torch.nn.utils.rnn.pad_sequence
    return model, dict(
        mel=mel,
        mel_lengths=mel_lengths,
        phones=pad(phones, batch_first=True),
        phone_lengths=torch.tensor([len(p) for p in phones]),
        durations=pad(durations, batch_first=True),
    )


def test_frame_counts_follow_the_strided_front_end():
    assert mel_frames(torch.tensor([16000])).item() == 101
    assert speech_frames(torch.tensor([101, 100, 1])).tolist() == [51, 50, 1]


def test_forward_shapes_match_frames_and_joint_dim():
    config = tiny_config()
    model, batch = make_batch(config)
    out = model(**batch, prompt_clip=batch["mel"][:, :, :30])
    t50 = speech_frames(batch["mel_lengths"])
    assert out.s.shape == (3, int(t50.max()), config.joint_dim)
    assert out.p.shape == out.s.shape
    assert torch.equal(out.frame_lengths, t50)
    assert out.mel_from_s.shape[:2] == (3, config.n_mels)
    assert out.mel_from_s.shape[2] == 2 * out.s.shape[1]
    assert out.log_durations.shape == batch["phones"].shape
    assert out.mu.shape == (3, config.prompt_latent)


def test_speech_encoder_exposes_every_layer():
    config = tiny_config()
    model, batch = make_batch(config)
    s, hidden, lengths = model.encode_speech(batch["mel"], batch["mel_lengths"])
    assert len(hidden) == config.speech_layers + 1
    assert all(h.shape == (3, s.shape[1], config.d_model) for h in hidden)


def test_length_regulator_repeats_tokens_by_duration():
    hidden = torch.arange(6, dtype=torch.float32).reshape(2, 3, 1)
    durations = torch.tensor([[2, 0, 1], [1, 3, 9]])
    out, lengths = length_regulate(hidden, durations, torch.tensor([3, 2]))
    assert lengths.tolist() == [3, 4]  # the padding token's 9 frames are masked
    assert out[0, :3, 0].tolist() == [0.0, 0.0, 2.0]
    assert out[1, :4, 0].tolist() == [3.0, 4.0, 4.0, 4.0]
    assert out[0, 3:].abs().sum() == 0  # padded with zeros


def test_duration_predictor_rounds_to_at_least_one_frame_and_masks_padding():
    log_d = torch.log1p(torch.tensor([[0.2, 3.4, 7.6], [2.0, 5.0, 5.0]]))
    frames = DurationPredictor.to_frames(log_d, torch.tensor([3, 1]))
    assert frames.tolist() == [[1, 3, 8], [2, 0, 0]]


def test_duration_predictor_learns_durations():
    config = tiny_config()
    torch.manual_seed(0)
    model = CTAP(config)
    phones = torch.randint(2, config.n_phones, (8, 6))
    durations = (phones % 4) + 1  # duration is a function of the phone
    lengths = torch.full((8,), 6)
    params = list(model.phonemes.parameters()) + list(model.durations.parameters())
    opt = torch.optim.Adam(params, lr=3e-3)
    first = None
    for _ in range(60):
        tokens = model.phonemes.tokens(phones, lengths)
        loss = torch.nn.functional.mse_loss(
            model.durations(tokens, lengths), torch.log1p(durations.float())
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first if first is not None else loss.item()
    assert loss.item() < 0.2 * first
    _, frame_lengths, _ = model.encode_phonemes(phones, lengths)  # predicted durations
    assert (frame_lengths - durations.sum(1)).abs().float().mean() <= 2.0


def test_contrastive_loss_prefers_aligned_frames_to_shuffled_ones():
    torch.manual_seed(0)
    s = torch.randn(2, 20, 16)
    lengths = torch.tensor([20, 15])
    scale = torch.tensor(math.log(1 / 0.07))
    aligned = frame_contrastive_loss(s, s + 0.05 * torch.randn_like(s), lengths, scale)
    shuffled = frame_contrastive_loss(s, s[:, torch.randperm(20)], lengths, scale)
    assert aligned < 0.1 < shuffled
    # symmetric: swapping speech and phonemes gives the same value
    p = torch.randn(2, 20, 16)
    assert torch.isclose(
        frame_contrastive_loss(s, p, lengths, scale), frame_contrastive_loss(p, s, lengths, scale)
    )


def test_contrastive_loss_ignores_padding_frames():
    torch.manual_seed(1)
    s, p = torch.randn(2, 10, 8), torch.randn(2, 10, 8)
    lengths = torch.tensor([10, 6])
    scale = torch.tensor(2.0)
    noisy_s, noisy_p = s.clone(), p.clone()
    noisy_s[1, 6:] = 100.0
    noisy_p[1, 6:] = -7.0
    assert torch.isclose(
        frame_contrastive_loss(s, p, lengths, scale),
        frame_contrastive_loss(noisy_s, noisy_p, lengths, scale),
    )


def test_contrastive_loss_matches_an_independent_computation():
    torch.manual_seed(2)
    s, p = torch.randn(1, 5, 4), torch.randn(1, 5, 4)
    scale = torch.tensor(1.5)
    sn = s[0] / s[0].norm(dim=1, keepdim=True)
    pn = p[0] / p[0].norm(dim=1, keepdim=True)
    sim = (sn @ pn.T) * math.exp(1.5)
    row = -torch.diag(sim - torch.logsumexp(sim, dim=1, keepdim=True)).mean()
    col = -torch.diag(sim - torch.logsumexp(sim, dim=0, keepdim=True)).mean()
    expected = 0.5 * (row + col)
    assert torch.isclose(
        frame_contrastive_loss(s, p, torch.tensor([5]), scale), expected, atol=1e-5
    )


def test_kl_margin_and_mel_mse():
    mu, logvar = torch.zeros(4, 8), torch.zeros(4, 8)
    assert kl_with_margin(mu, logvar, 1.0) == 0
    mu = torch.ones(4, 8)  # KL = 0.5 * 8 = 4 nats
    assert torch.isclose(kl_with_margin(mu, logvar, 1.0), torch.tensor(3.0))
    assert kl_with_margin(mu, logvar, 5.0) == 0
    pred, target = torch.zeros(1, 2, 6), torch.ones(1, 2, 5)
    target[:, :, 3:] = 50.0  # beyond the valid length: ignored
    assert torch.isclose(masked_mel_mse(pred, target, torch.tensor([3])), torch.tensor(1.0))


@pytest.mark.parametrize(
    "variant",
    [
        {},
        {"use_decoder": False},
        {"embed_mse_weight": 1.0},
        {"phoneme_decoder": True},
        {"use_decoder": False, "embed_mse_weight": 0.5, "phoneme_decoder": True},
    ],
)
def test_paper_ablations_build_and_give_finite_losses(variant):
    config = tiny_config(**variant)
    model, batch = make_batch(config)
    out = model(**batch)
    terms = ctap_losses(out, config, model.logit_scale, **batch)
    assert all(torch.isfinite(v) for v in terms.values())
    assert ("mse" in terms) == config.use_decoder
    assert ("embed_mse" in terms) == (config.embed_mse_weight > 0)
    assert ("phone_ce" in terms) == config.phoneme_decoder
    terms["total"].backward()
    assert model.logit_scale.grad is not None


def test_phone_targets_and_alignment_run_length_round_trip():
    vocab = PhoneVocabulary(["a", "b", "c"])
    phones = [["a", 0.1, 0.2], ["b", 0.2, 0.25], ["b", 0.25, 0.3], ["c", 0.4, 0.5]]
    token, segment = frame_alignment(phones, vocab, 30)
    ids, durations = run_length(token, segment)
    sil, a, b, c = (vocab.id(x) for x in ("sil", "a", "b", "c"))
    # 0.1 s = 5 frames at 50/s; the two "b" stay separate phonemes; gaps become silence
    assert ids.tolist() == [sil, a, b, b, sil, c, sil]
    assert durations.tolist() == [5, 5, 2, 3, 5, 5, 5]  # 12.5 rounds half to even
    assert int(durations.sum()) == 30
    targets = frame_phone_targets(ids[None], durations[None], torch.tensor([7]), 32)
    assert targets[0, :30].tolist() == token.tolist()
    assert targets[0, 30:].tolist() == [-100, -100]


def test_mismatched_durations_are_reported():
    config = tiny_config()
    model, batch = make_batch(config)
    batch["durations"][0, 0] += 3
    with pytest.raises(ValueError, match="durations must cover"):
        model(**batch)


def test_frame_order_gives_every_frame_of_a_phone_its_own_vector():
    """Eq. 1: the phoneme encoder runs after the length regulator, so the frames of one
    long phone differ; the first checkpoint's token order makes them identical."""
    phones, lengths, durations = (
        torch.tensor([[3, 4, 5]]),
        torch.tensor([3]),
        torch.tensor([[2, 8, 3]]),
    )
    for order, identical in (("frame", False), ("token", True)):
        torch.manual_seed(0)
        model = CTAP(tiny_config(phone_encoder=order)).eval()
        p, frames, _ = model.encode_phonemes(phones, lengths, durations)
        assert frames.tolist() == [13]
        long_phone = p[0, 2:10]
        same = torch.allclose(long_phone, long_phone[:1].expand_as(long_phone), atol=1e-5)
        assert same == identical, order


def test_frame_order_keeps_padded_batches_equal_to_single_utterances():
    torch.manual_seed(0)
    model = CTAP(tiny_config()).eval()
    phones = torch.tensor([[3, 4, 5, 6], [7, 8, 0, 0]])
    lengths, durations = torch.tensor([4, 2]), torch.tensor([[2, 3, 1, 4], [3, 2, 0, 0]])
    p, frames, log_d = model.encode_phonemes(phones, lengths, durations)
    alone, _, log_alone = model.encode_phonemes(phones[1:, :2], lengths[1:], durations[1:, :2])
    assert torch.allclose(p[1, :5], alone[0], atol=1e-5)
    assert torch.allclose(log_d[1, :2], log_alone[0], atol=1e-5)


def test_old_checkpoint_config_loads_with_the_token_order():
    from speechbench.ctap.config import model_config_from_dict, to_dict

    saved = to_dict(tiny_config())
    del saved["phone_encoder"], saved["duration_layers"]
    assert model_config_from_dict(saved).phone_encoder == "token"
    with pytest.raises(ValueError, match="phone_encoder"):
        CTAP(tiny_config(phone_encoder="words"))


def test_kl_margin_is_per_utterance():
    """One utterance above the margin gets a gradient although the batch mean is below."""
    mu = torch.zeros(4, 8)
    mu[0] = 1.0  # KL 4 nats; the others 0: mean 1 nat
    mu.requires_grad_(True)
    logvar = torch.zeros(4, 8)
    loss = kl_with_margin(mu, logvar, 2.0)
    assert torch.isclose(loss, torch.tensor((4.0 - 2.0) / 4))
    loss.backward()
    assert mu.grad[0].abs().sum() > 0 and mu.grad[1:].abs().sum() == 0


def test_weight_decay_skips_logit_scale_norms_biases_and_embeddings():
    from speechbench.ctap.pretrain import parameter_groups

    model = CTAP(tiny_config())
    decay, rest = parameter_groups(model, 0.01)
    assert decay["weight_decay"] == 0.01 and rest["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    no_decay = {names[id(p)] for p in rest["params"]}
    decayed = {names[id(p)] for p in decay["params"]}
    assert "logit_scale" in no_decay
    assert "speech.norm.weight" in no_decay and "phonemes.out_norm.weight" in no_decay
    assert "prompt.block.bn1.weight" in no_decay and "phonemes.embed.weight" in no_decay
    assert "speech.layers.0.self_attn.in_proj_bias" in no_decay
    assert "speech.layers.0.self_attn.in_proj_weight" in decayed
    assert "speech.conv1.weight" in decayed
    assert len(decayed) + len(no_decay) == len(names)


def test_phoneme_decoder_ablation_has_two_ce_losses_from_s_and_p():
    config = tiny_config(phoneme_decoder=True, phone_decoder_layers=2)
    model, batch = make_batch(config)
    out = model(**batch)
    assert out.phone_logits.shape == out.phone_logits_p.shape
    assert out.phone_logits.shape[-1] == config.n_phones
    assert len(model.phone_decoder.layers) == 2
    terms = ctap_losses(out, config, model.logit_scale, **batch)
    assert {"phone_ce", "phone_ce_p"} <= set(terms)
    terms["total"].backward()
    assert model.phonemes.embed.weight.grad.abs().sum() > 0  # CE on P reaches the phonemes


def test_embed_mse_can_replace_the_contrastive_loss():
    config = tiny_config(contrastive_weight=0.0, embed_mse_weight=1.0)
    model, batch = make_batch(config)
    terms = ctap_losses(model(**batch), config, model.logit_scale, **batch)
    terms["total"].backward()
    assert model.logit_scale.grad is None or model.logit_scale.grad == 0
    assert "embed_mse" in terms

"""The CTAP pretraining loop: progress bar, atomic periodic checkpoints, resume, loss curves.

A run lives in ``out_dir``: ``last.pt`` (model, optimiser, RNG states, loss
history; replaced atomically every ``train.checkpoint_every`` steps), ``history.json``,
``loss_curve.png`` and ``config.json``. Re-running the same command resumes from
``last.pt``; the time budget ``train.max_minutes`` counts across resumes, on the clock
``train.clock`` names: ``wall`` (elapsed time) or ``cpu`` (this process's CPU time, the
fair budget on a shared machine: with threads=1 it is one core's minutes).
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from speechbench import atomic, paths, registry
from speechbench.corpora.base import Utterance
from speechbench.corpora.phones import PHONES
from speechbench.ctap.config import PretrainConfig, model_config_from_dict
from speechbench.ctap.data import (
    Example,
    PhoneVocabulary,
    collate,
    length_batches,
    load_examples,
    mel_statistics,
)
from speechbench.ctap.diagnostics import retrieval_accuracy
from speechbench.ctap.losses import ctap_losses
from speechbench.ctap.model import CTAP, FRAME_RATE
from speechbench.errors import ConfigError, CorpusError
from speechbench.pretraining.loop import Progress, lr_factor, train_steps  # noqa: F401 (lr_factor: public)

CHECKPOINT = "last.pt"
SOURCES = "train_sources.txt"  # one shared source id per line (speechbench data check-leaks)


def training_sources(records: list[Utterance]) -> list[str]:
    """Every shared source id the pretraining set is made of, sorted."""
    return sorted({src for r in records for src in r.labels.get("sources", [])})


def write_sources(out: Path, records: list[Utterance]) -> int:
    """``out/train_sources.txt``: the pretraining set's shared sources, for check-leaks."""
    sources = training_sources(records)
    atomic.write_text(out / SOURCES, "".join(f"{src}\n" for src in sources))
    return len(sources)


def run_dir(config: PretrainConfig) -> Path:
    return Path(config.out_dir) if config.out_dir else paths.home() / "pretrain" / "ctap"


def corpus_inventory(corpus: Any) -> list[str]:
    """The phone inventory (stable ids): a corpus's own ``phone_inventory`` if it declares
    one, else the phone corpora's shared 39-phone set."""
    inventory = getattr(corpus, "phone_inventory", None) or PHONES
    return [str(p) for p in inventory]


def load_corpora(
    config: PretrainConfig,
) -> tuple[list[Utterance], list[Utterance], dict, list[str], dict]:
    """(train records, eval records, record id -> corpus root, inventory, name -> version).

    Pretraining reads only train-split records, and only of corpora whose records name
    their shared sources (``labels["sources"]``, speechbench.corpora.splits), so it never
    sees a recording or text that any corpus tests on."""
    if config.train_split != "train":
        raise ConfigError(
            f"train_split={config.train_split!r}: pretraining reads only the train split "
            "(every other split holds sources that some corpus evaluates on)"
        )
    if config.eval_split == "train":
        raise ConfigError("eval_split=train: evaluate on held-out speech (dev or test)")
    train: list[Utterance] = []
    evaluation: list[Utterance] = []
    roots: dict[str, Path] = {}
    inventory: list[str] = []
    versions: dict[str, str] = {}
    for name in [n.strip() for n in config.corpus.split(",") if n.strip()]:
        corpus = registry.get("corpora", name)()
        records = corpus.prepare()
        versions[name] = corpus.version
        inventory += [p for p in corpus_inventory(corpus) if p not in inventory]
        for record in records:
            if not record.phones:
                continue
            record.id = f"{name}/{record.id}"
            roots[record.id] = corpus.root
            if record.split == config.train_split:
                if "sources" not in record.labels:
                    raise CorpusError(
                        f"corpus {name} {corpus.version}: record {record.id} names no "
                        'labels["sources"]; its split predates the shared leak-free split. '
                        f"Rebuild it: speechbench data prepare {name} --force"
                    )
                train.append(record)
            elif record.split == config.eval_split:
                evaluation.append(record)
    if not train:
        raise CorpusError(
            f"corpus {config.corpus!r} has no {config.train_split!r} utterances with phone "
            "alignments; CTAP needs `phones` in the manifest (try corpus=mini-phone)"
        )
    return train, evaluation, roots, inventory, versions


def save_loss_curve(
    history: list[dict[str, float]], evals: list[dict[str, float]], path: Path
) -> None:
    """Training loss terms (log scale) and held-out retrieval accuracy, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    keys = [k for k in history[0] if k not in ("step", "lr", "temperature")] if history else []
    for key in keys:
        left.plot([h["step"] for h in history], [max(h[key], 1e-4) for h in history], label=key)
    left.set_yscale("log")
    left.set_xlabel("step")
    left.set_title("CTAP training losses")
    left.legend(fontsize=8)
    for key in ("phone_top1", "frame_within_1", "frame_top1"):
        if evals:
            right.plot([e["step"] for e in evals], [e[key] for e in evals], marker="o", label=key)
    if evals:
        right.axhline(evals[-1]["phone_chance"], color="grey", linestyle=":", label="phone chance")
    right.set_xlabel("step")
    right.set_ylim(0, 1)
    right.set_title("held-out speech -> phoneme frame retrieval")
    right.legend(fontsize=8)
    fig.tight_layout()
    atomic.write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=90))
    plt.close(fig)


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    atomic.write_with(path, lambda tmp: torch.save(state, tmp))


def export_checkpoint(state: dict[str, Any], dest: Path, name: str = "ctap") -> dict[str, Path]:
    """Write the shipped files: fp16 weights (mel front end kept fp32), config json, curve."""
    dest.mkdir(parents=True, exist_ok=True)
    weights = {
        key: (t.half() if t.is_floating_point() and not key.startswith("features.") else t)
        for key, t in state["model"].items()
    }
    payload = {
        "model_config": state["model_config"],
        "vocabulary": state["vocabulary"],
        "state_dict": weights,
    }
    files = {"weights": dest / f"{name}.pt", "config": dest / f"{name}.json"}
    save_checkpoint(files["weights"], payload)
    atomic.write_json(files["config"], state["summary"])
    if state["history"]:
        files["curve"] = dest / f"{name}_loss_curve.png"
        save_loss_curve(state["history"], state["evals"], files["curve"])
    return files


def build_model(config: PretrainConfig, vocab: PhoneVocabulary, train: list[Example]) -> CTAP:
    config.model.n_phones = len(vocab)
    model = CTAP(config.model)
    mean, std = mel_statistics(train)
    model.features.mean.copy_(mean)
    model.features.std.copy_(std)
    return model


NO_DECAY_MODULES = (torch.nn.LayerNorm, torch.nn.BatchNorm1d, torch.nn.Embedding)


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: weight decay on weight matrices and conv kernels only; the learned
    temperature ``logit_scale``, every norm's scale and shift, embeddings and biases get
    none (decaying logit_scale pulls the temperature towards 1, decaying norm scales
    shrinks the features)."""
    no_decay: set[int] = set()
    for module in model.modules():
        if isinstance(module, NO_DECAY_MODULES):
            no_decay.update(id(p) for p in module.parameters(recurse=False))
    decay, rest = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if id(param) in no_decay or name == "logit_scale" or name.endswith("bias"):
            rest.append(param)
        else:
            decay.append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": rest, "weight_decay": 0.0},
    ]


def pretrain(config: PretrainConfig) -> dict[str, Any]:
    """Train (or resume) CTAP as configured; returns the run summary."""
    torch.set_num_threads(max(1, config.train.threads))
    out = run_dir(config)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / CHECKPOINT
    resume_state = None
    if config.resume and ckpt_path.exists():
        # weights_only: a checkpoint in an output folder must not be able to run code
        try:
            # TorchVersion (a str subclass) sits in checkpoints written before str(...)
            with torch.serialization.safe_globals([torch.torch_version.TorchVersion]):
                resume_state = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        except Exception as exc:  # truncated, corrupt, or pickles arbitrary objects
            raise ConfigError(
                f"{ckpt_path}: cannot load the checkpoint ({type(exc).__name__}); delete it "
                "or use resume=false to start over"
            ) from None

    train_records, eval_records, roots, inventory, versions = load_corpora(config)
    if resume_state is not None:
        vocab = PhoneVocabulary(resume_state["vocabulary"])
    else:
        vocab = PhoneVocabulary.from_records(train_records + eval_records, inventory)
    random.seed(config.seed)
    torch.manual_seed(config.seed)

    # the front end is deterministic, so a throw-away model computes the features
    config.model.n_phones = len(vocab)
    front_end = CTAP(config.model).features
    train_examples = load_examples(train_records, roots, vocab, front_end, "train features")
    eval_examples = (
        load_examples(
            eval_records[: config.train.eval_utterances], roots, vocab, front_end, "eval features"
        )
        if eval_records
        else []
    )
    torch.manual_seed(config.seed)
    model = build_model(config, vocab, train_examples)
    optimizer = torch.optim.AdamW(
        parameter_groups(model, config.train.weight_decay), lr=config.train.lr
    )
    progress = Progress()
    wall_before = 0.0
    rng = random.Random(config.seed)
    if resume_state is not None:
        # a key added since the checkpoint was written takes its default
        if asdict(model_config_from_dict(resume_state["model_config"])) != asdict(config.model):
            raise ConfigError(
                f"{ckpt_path} was trained with a different model config; use another "
                "out_dir=... or resume=false to start over"
            )
        model.load_state_dict(resume_state["model"])
        optimizer.load_state_dict(resume_state["optimizer"])
        progress.step, progress.elapsed = resume_state["step"], resume_state["elapsed_seconds"]
        wall_before = resume_state.get("summary", {}).get("wall_minutes", 0.0)
        if resume_state.get("clock", "wall") != config.train.clock:
            raise ConfigError(
                f"{ckpt_path} counted its budget on the {resume_state.get('clock', 'wall')} "
                f"clock; resume with train.clock={resume_state.get('clock', 'wall')}"
            )
        progress.history, progress.evals = resume_state["history"], resume_state["evals"]
        rng.setstate(resume_state["python_rng"])
        torch.set_rng_state(resume_state["torch_rng"])

    summary_base = {
        "config": asdict(config),
        "corpus_versions": versions,
        "train_utterances": len(train_examples),
        "train_hours": sum(e.frame_token.shape[0] for e in train_examples) / FRAME_RATE / 3600,
        "eval_utterances": len(eval_examples),
        "parameters": sum(p.numel() for p in model.parameters()),
        "torch": str(torch.__version__),  # a plain str: loads with weights_only=True
    }
    atomic.write_json(out / "config.json", summary_base)
    summary_base["train_sources"] = write_sources(out, train_records)
    wall_started = time.monotonic()

    def state() -> dict[str, Any]:
        return {
            "model": model.state_dict(),
            "model_config": asdict(config.model),
            "vocabulary": vocab.symbols,
            "optimizer": optimizer.state_dict(),
            "step": progress.step,
            "elapsed_seconds": progress.elapsed,
            "clock": config.train.clock,
            "history": progress.history,
            "evals": progress.evals,
            "python_rng": rng.getstate(),
            "torch_rng": torch.get_rng_state(),
            "summary": {
                **summary_base,
                "steps": progress.step,
                "wall_minutes": round((time.monotonic() - wall_started) / 60.0 + wall_before, 2),
                f"{config.train.clock}_minutes": round(progress.elapsed / 60.0, 2),
                "final_eval": progress.evals[-1] if progress.evals else None,
                "final_train": progress.history[-1] if progress.history else None,
            },
        }

    def evaluate() -> None:
        if eval_examples:
            result = retrieval_accuracy(model, eval_examples)
            progress.evals.append({"step": float(progress.step), **result})
            tqdm.write(
                f"step {progress.step}: held-out phone_top1 {result['phone_top1']:.3f} "
                f"frame_top1 {result['frame_top1']:.3f} (phone chance {result['phone_chance']:.3f})"
            )

    lengths = [e.frame_token.shape[0] for e in train_examples]
    max_frames = int(config.train.max_seconds * FRAME_RATE)
    prompt_frames = int(config.model.prompt_seconds * 100)
    capped = [min(n, max_frames) for n in lengths]

    def epoch():
        for indices in length_batches(capped, config.train.batch_frames, rng):
            yield collate(
                [train_examples[i] for i in indices],
                model.features.mean,
                model.features.std,
                max_frames,
                prompt_frames,
                rng,
            )

    def loss_terms(batch) -> dict[str, torch.Tensor]:
        out_ = model(
            batch.mel,
            batch.mel_lengths,
            batch.phones,
            batch.phone_lengths,
            batch.durations,
            batch.prompt,
        )
        return ctap_losses(
            out_,
            config.model,
            model.logit_scale,
            batch.mel,
            batch.mel_lengths,
            batch.phones,
            batch.phone_lengths,
            batch.durations,
        )

    train_steps(
        progress,
        model=model,
        optimizer=optimizer,
        train=config.train,
        epoch=epoch,
        loss_terms=loss_terms,
        evaluate=evaluate,
        checkpoint=lambda: save_checkpoint(ckpt_path, state()),
        desc="ctap pretrain",
        postfix=("total", "contrastive", "mse"),
        extra=lambda: {"temperature": float(1.0 / model.logit_scale.detach().exp())},
    )
    final = state()
    save_checkpoint(ckpt_path, final)
    atomic.write_json(out / "history.json", {"train": progress.history, "eval": progress.evals})
    if progress.history:
        save_loss_curve(progress.history, progress.evals, out / "loss_curve.png")
    atomic.write_json(out / "summary.json", final["summary"])
    if config.export_dir:
        export_checkpoint(final, Path(config.export_dir))
        atomic.write_text(Path(config.export_dir) / f"ctap.{SOURCES}", (out / SOURCES).read_text())
    return final["summary"]


def load_exported(path: Path) -> tuple[CTAP, PhoneVocabulary]:
    """Load shipped fp16 weights back into a float32 CTAP in eval mode."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    model = CTAP(model_config_from_dict(payload["model_config"]))
    model.load_state_dict(
        {k: v.float() if v.is_floating_point() else v for k, v in payload["state_dict"].items()}
    )
    model.eval()
    return model, PhoneVocabulary(payload["vocabulary"])


def describe(summary: dict[str, Any]) -> str:
    return json.dumps(summary, indent=2, default=str)

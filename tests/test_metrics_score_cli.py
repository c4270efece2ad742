"""`speechbench score` through typer's CliRunner on the user's own files, no upstream."""

import json

import numpy as np
import pytest
import soundfile as sf
import typer
from speechbench.metrics.generation import mel_cepstral_distortion, mel_cepstrum
from speechbench.metrics.lid import cavg
from speechbench.metrics.recognition import word_error_rate
from speechbench.metrics.separation import si_sdr
from speechbench.metrics.verification import equal_error_rate, min_dcf
from typer.testing import CliRunner

from speechbench.errors import ConfigError
from speechbench.score import score_command

RATE = 16000


@pytest.fixture(scope="module")
def app():
    app = typer.Typer()

    @app.callback()
    def main() -> None:  # a callback keeps `score` a sub-command, as in speechbench's CLI
        pass

    app.command("score")(score_command)
    return app


def _score(app, *args):
    result = CliRunner().invoke(app, ["score", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return result.output


def _json(app, *args):
    return json.loads(_score(app, *args, "--format", "json"))


def test_wer_from_kaldi_style_text_files(app, tmp_path):
    (tmp_path / "ref.txt").write_text("u1 the cat sat\nu2 hello world\nu3 a b c d\n")
    (tmp_path / "hyp.txt").write_text("u2 hello\nu1 the bat sat on\nu3 a b c d\n")
    out = _json(app, "wer", "--ref", str(tmp_path / "ref.txt"), "--hyp", str(tmp_path / "hyp.txt"))
    expected = word_error_rate(
        ["the cat sat", "hello world", "a b c d"], ["the bat sat on", "hello", "a b c d"]
    )
    assert out["value"] == pytest.approx(expected)
    assert out["ci_low"] <= out["value"] <= out["ci_high"] and out["items"] == 3
    assert out["higher_is_better"] is False
    table = _score(
        app, "wer", "--ref", str(tmp_path / "ref.txt"), "--hyp", str(tmp_path / "hyp.txt")
    )
    assert "wer" in table and "value" in table


def test_eer_and_min_dcf_from_trial_and_score_files(app, tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.random(200) < 0.5
    scores = rng.standard_normal(200) + labels
    trials = "\n".join(f"{int(t)} spk{i} utt{i}" for i, t in enumerate(labels))  # VoxCeleb format
    (tmp_path / "trials.txt").write_text(trials + "\n")
    (tmp_path / "scores.txt").write_text(
        "\n".join(f"spk{i} utt{i} {s:.6f}" for i, s in enumerate(scores))
    )
    rounded = np.round(scores, 6)
    args = ["--trials", str(tmp_path / "trials.txt"), "--hyp", str(tmp_path / "scores.txt")]
    assert _json(app, "eer", *args)["value"] == pytest.approx(equal_error_rate(rounded, labels))
    out = _json(app, "min_dcf", *args, "--p-target", "0.05", "--bootstrap", "0")
    assert out["value"] == pytest.approx(min_dcf(rounded, labels, p_target=0.05))
    assert out["ci_low"] is None


def _write(folder, name, signal):
    folder.mkdir(exist_ok=True)
    sf.write(folder / f"{name}.wav", signal, RATE, subtype="FLOAT")


def test_si_sdr_and_pesq_over_audio_folders(app, tmp_path):
    rng = np.random.default_rng(1)
    t = np.arange(RATE) / RATE
    clean = [
        0.3 * np.sin(2 * np.pi * (150 + 50 * i) * t) * np.clip(np.sin(2 * np.pi * 2 * t), 0, None)
        for i in range(3)
    ]
    noisy = [c + 0.02 * rng.standard_normal(c.size) for c in clean]
    for i, (c, n) in enumerate(zip(clean, noisy, strict=True)):
        _write(tmp_path / "ref", f"utt{i}", c)
        _write(tmp_path / "hyp", f"utt{i}", n)
    args = ["--ref", str(tmp_path / "ref"), "--hyp", str(tmp_path / "hyp")]
    expected = si_sdr(np.stack(noisy).astype(np.float32), np.stack(clean).astype(np.float32)).mean()
    assert _json(app, "si_sdr", *args)["value"] == pytest.approx(float(expected), abs=1e-4)
    # a silent pair: PESQ cannot score it -> NaN with a warning naming it, the rest averaged
    _write(tmp_path / "ref", "silent", np.zeros(RATE))
    _write(tmp_path / "hyp", "silent", np.zeros(RATE))
    with pytest.warns(UserWarning, match="silent"):
        out = _json(app, "pesq_wb", *args, "--workers", "1")
    assert out["unscored_items"] == 1 and 1.0 < out["value"] < 4.7


def test_mcd_tagging_lid_events_values_and_embeddings(app, tmp_path):
    t = np.arange(RATE) / RATE
    ref_sig, gen_sig = np.sin(2 * np.pi * 220 * t) * 0.3, np.sin(2 * np.pi * 230 * t) * 0.3
    _write(tmp_path / "r", "a", ref_sig)
    _write(tmp_path / "g", "a", gen_sig)
    out = _json(app, "mcd", "--ref", str(tmp_path / "r"), "--hyp", str(tmp_path / "g"))
    read = [sf.read(tmp_path / d / "a.wav")[0] for d in ("r", "g")]
    expected = mel_cepstral_distortion([mel_cepstrum(read[0], RATE)], [mel_cepstrum(read[1], RATE)])
    assert out["value"] == pytest.approx(float(expected[0]))

    (tmp_path / "tags.txt").write_text("c1 dog,cat\nc2 bird\n")
    (tmp_path / "tag_scores.csv").write_text("id,dog,cat,bird\nc1,0.9,0.1,0.5\nc2,0.2,0.3,0.7\n")
    out = _json(
        app,
        "lwlrap",
        "--ref",
        str(tmp_path / "tags.txt"),
        "--hyp",
        str(tmp_path / "tag_scores.csv"),
    )
    # c1: dog rank 1 -> 1; cat rank 3 with 2 positives -> 2/3; c2: bird rank 1 -> 1
    assert out["value"] == pytest.approx((1 + 2 / 3 + 1) / 3)
    assert out["per_class"] == pytest.approx([1.0, 2 / 3, 1.0])

    (tmp_path / "langs.txt").write_text("x en\ny fr\nz fr\n")
    (tmp_path / "lang_scores.csv").write_text("id,en,fr\nx,1.0,-1.0\ny,0.5,0.2\nz,-1,2\n")
    out = _json(
        app,
        "cavg",
        "--ref",
        str(tmp_path / "langs.txt"),
        "--hyp",
        str(tmp_path / "lang_scores.csv"),
    )
    matrix = np.array([[1.0, -1.0], [0.5, 0.2], [-1, 2]])
    assert out["value"] == pytest.approx(cavg(matrix, np.array([0, 1, 1])))

    (tmp_path / "ev_ref.tsv").write_text("f1\t0.0\t2.0\tspeech\nf2\n")
    (tmp_path / "ev_hyp.tsv").write_text("f1\t1.0\t3.0\tspeech\n")
    out = _json(
        app,
        "segment_f1",
        "--ref",
        str(tmp_path / "ev_ref.tsv"),
        "--hyp",
        str(tmp_path / "ev_hyp.tsv"),
        "--bootstrap",
        "0",
    )
    assert out["value"] == pytest.approx(0.5) and "speech" in out["class_wise"]

    (tmp_path / "mos.txt").write_text("a 1 s1\nb 2 s1\nc 4 s2\nd 5 s2\ne 3 s3\n")
    (tmp_path / "pred.txt").write_text("a 2\nb 2\nc 4\nd 4\ne 1\n")
    out = _json(
        app,
        "sys_srcc",
        "--ref",
        str(tmp_path / "mos.txt"),
        "--hyp",
        str(tmp_path / "pred.txt"),
        "--bootstrap",
        "0",
    )
    assert out["value"] == pytest.approx(0.5)  # system means truth (1.5, 4.5, 3) vs pred (2, 4, 1)

    for folder, vec in (("er", [1.0, 0.0]), ("eg", [1.0, 1.0])):
        (tmp_path / folder).mkdir()
        np.save(tmp_path / folder / "u.npy", np.array(vec))
    out = _json(app, "spk_sim", "--ref", str(tmp_path / "er"), "--hyp", str(tmp_path / "eg"))
    assert out["value"] == pytest.approx(1 / np.sqrt(2))


def test_user_errors_are_one_line_speechbench_errors(app, tmp_path):
    (tmp_path / "ref.txt").write_text("u1 a b\nu2 c\n")
    (tmp_path / "hyp.txt").write_text("u1 a b\n")
    with pytest.raises(ConfigError, match="u2") as missing:
        _score(app, "wer", "--ref", str(tmp_path / "ref.txt"), "--hyp", str(tmp_path / "hyp.txt"))
    assert "\n" not in str(missing.value)  # the CLI prints it as one line
    with pytest.raises(ConfigError, match="unknown metric 'werr'"):
        _score(app, "werr", "--ref", str(tmp_path / "ref.txt"), "--hyp", str(tmp_path / "hyp.txt"))
    with pytest.raises(ConfigError, match="--format"):
        _score(
            app,
            "wer",
            "--ref",
            str(tmp_path / "ref.txt"),
            "--hyp",
            str(tmp_path / "ref.txt"),
            "--format",
            "xml",
        )
    with pytest.raises(ConfigError, match="not found"):
        _score(app, "wer", "--ref", str(tmp_path / "nope.txt"), "--hyp", str(tmp_path / "hyp.txt"))
    with pytest.raises(ConfigError, match="--mix"):
        _score(app, "si_sdri", "--ref", str(tmp_path), "--hyp", str(tmp_path))
    (tmp_path / "vals.txt").write_text("a nan\n")
    with pytest.raises(ConfigError, match="NaN"):
        _score(app, "lcc", "--ref", str(tmp_path / "vals.txt"), "--hyp", str(tmp_path / "vals.txt"))


def test_normalize_option_uses_the_shared_text_normaliser(app, tmp_path):
    text = pytest.importorskip("speechbench.text")  # the lead's module, merged on main
    (tmp_path / "ref.txt").write_text("u1 Press 4, then #.\n")
    (tmp_path / "hyp.txt").write_text("u1 press four then pound\n")
    args = ["--ref", str(tmp_path / "ref.txt"), "--hyp", str(tmp_path / "hyp.txt")]
    assert _json(app, "wer", *args, "--normalize", "--bootstrap", "0")["value"] == 0.0
    assert _json(app, "wer", *args, "--bootstrap", "0")["value"] > 0.0
    assert text.normalize("Press 4, then #.") == "press four then pound"


def test_compare_runs_a_paired_bootstrap_test(app, tmp_path):
    refs = [f"u{i} the cat sat on the mat" for i in range(30)]
    (tmp_path / "ref.txt").write_text("\n".join(refs))
    (tmp_path / "good.txt").write_text("\n".join(refs))
    (tmp_path / "bad.txt").write_text("\n".join(f"u{i} the dog sat on a mat" for i in range(30)))
    out = _json(
        app, "wer", "--ref", str(tmp_path / "ref.txt"), "--hyp", str(tmp_path / "good.txt"),
        "--compare", str(tmp_path / "bad.txt"), "--bootstrap", "200",
    )  # fmt: skip
    assert out["value"] == 0.0 and out["compare_value"] == pytest.approx(2 / 6)
    assert out["hyp_is_better"] is True and out["p_value"] == 0.0
    assert out["delta"] == pytest.approx(-2 / 6)

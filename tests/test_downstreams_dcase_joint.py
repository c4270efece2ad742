"""dcasenet: joint training over three corpora with per-task batches, then per-task
fine-tuning from the joint network; the three architectures; one-line errors."""

from __future__ import annotations

import json

import pytest
import torch
from dcase_fakes import register_fakes
from public_fakes import text, tone
from speechbench.downstreams.dcasenet import DCASENetCore, DCASENetOptions

from speechbench import paths
from speechbench.errors import ConfigError, CorpusError
from speechbench.runner import run

VIEWS = "corpus=tones-asc,tones-tag,tones-sed"
FAST = ["upstream=mel128", "downstream=dcasenet", "threads=1", "downstream.bootstrap=0"]


@pytest.fixture
def fakes(sb_home):
    register_fakes()
    return sb_home


@pytest.mark.parametrize("arch", ["v1", "v2", "v3"])
def test_every_architecture_gives_each_task_its_output_shape(arch):
    core = DCASENetCore(128, 1, {"asc": 3, "tag": 4, "sed": 5}, DCASENetOptions(arch=arch))
    out = core(torch.randn(2, 1, 101, 128), torch.tensor([101, 60]))
    assert out["asc"].shape == (2, 3) and out["tag"].shape == (2, 4)
    assert out["sed"].shape == (2, 101, 5)  # back at the upstream's frame rate


def test_joint_then_finetune_over_three_corpora(fakes):
    result = run([*FAST, VIEWS, "downstream.arch=v3", "downstream.max_epochs=4",
                  "downstream.finetune_epochs=1"])  # fmt: skip
    row = result.row
    assert row["primary_metric"] == "accuracy@tones-asc"
    m = row["metrics"]
    for key in ("accuracy", "uar", "accuracy_joint"):
        assert f"{key}@tones-asc" in m
    assert "lwlrap@tones-tag" in m and "lwlrap_joint@tones-tag" in m
    assert "segment_er@tones-sed" in m and "segment_er_joint@tones-sed" in m
    assert "accuracy@tones-sed" not in m and "segment_er@tones-asc" not in m  # one task each
    assert m["segment_er_allzero@tones-sed"] == pytest.approx(1.0)
    assert m["accuracy@tones-asc"] > 0.6 and m["lwlrap@tones-tag"] > 0.7
    training = json.loads(
        (paths.results_dir() / "runs" / result.run_id / "training.json").read_text()
    )
    stages = [(s["name"], s.get("corpora")) for s in training["stages"]]
    assert stages == [
        ("joint", ["tones-asc", "tones-tag", "tones-sed"]),
        ("finetune-asc", ["tones-asc"]),
        ("finetune-tag", ["tones-tag"]),
        ("finetune-sed", ["tones-sed"]),
        ("postprocess:sed", None),
    ]
    post = training["stages"][-1]
    assert set(post) >= {"final", "joint", "prior"}  # thresholds of both SED networks
    tuned = [h for h in training["history"] if h.get("stage") == "finetune-asc"]
    assert tuned[0]["lr"] == pytest.approx(2e-4)


def test_one_task_is_a_single_stage_baseline_and_mixup_switches_off(fakes):
    result = run([*FAST, "corpus=tones-sed", "downstream.tasks=sed", "downstream.arch=v1",
                  "downstream.mixup=false", "downstream.max_epochs=3"])  # fmt: skip
    m = result.row["metrics"]
    assert result.row["primary_metric"] == "segment_er"
    assert "segment_er_joint" not in m and "psds1" in m and "segment_er_prior" in m
    assert "downstream.mixup=false" in result.row["system"].split()


def test_one_corpus_with_all_three_labels_trains_all_tasks(fakes):
    m = run([*FAST, "corpus=tones-all", "downstream.arch=v2", "downstream.max_epochs=2",
             "downstream.finetune=false"]).row["metrics"]  # fmt: skip
    assert {"accuracy", "lwlrap", "segment_er"} <= set(m) and "accuracy_joint" not in m


def test_bad_task_lists_and_corpora_are_one_line(fakes):
    with pytest.raises(ConfigError, match="downstream.tasks: a comma-separated subset"):
        run([*FAST, VIEWS, "downstream.tasks=asc,scenes"])
    with pytest.raises(CorpusError, match="corpus tones-sed carries none of labels.scene"):
        run([*FAST, VIEWS, "downstream.tasks=asc,tag"])
    with pytest.raises(CorpusError, match="includes sed but no corpus of the run has"):
        run([*FAST, "corpus=tones-asc,tones-tag"])


# ------------------------------------------------------------------ the paper's corpora
def _tau_tree(root):
    corpus = root / "tau"
    meta = ["filename\tscene_label\tidentifier\tsource_label"]
    folds = {"train": ["filename\tscene_label"], "evaluate": ["filename\tscene_label"]}
    for i in range(12):
        scene, freq = (("park", 300.0), ("bus", 1800.0))[i % 2]
        name = f"audio/{scene}-lyon-{i}-{i}-a.wav"
        tone(corpus / name, 44100, 1.0, freq=freq)
        meta.append(f"{name}\t{scene}\tlyon-{i}\ta")
        folds["train" if i < 8 else "evaluate"].append(f"{name}\t{scene}")
    text(corpus / "meta.csv", "\n".join(meta) + "\n")
    for fold, lines in folds.items():
        text(corpus / "evaluation_setup" / f"fold1_{fold}.csv", "\n".join(lines) + "\n")
    return corpus


def _fsd_tree(root):
    corpus = root / "fsd"
    meta = corpus / "FSDKaggle2019.meta"
    rows = {"train_curated": [], "test": []}
    for i in range(12):
        label, freq = (("Bark", 500.0), ("Chirp", 2500.0))[i % 2]
        part = "train_curated" if i < 8 else "test"
        name = f"{i:08x}.wav"
        tone(corpus / f"FSDKaggle2019.audio_{part}" / name, 44100, 1.0, freq=freq)
        rows[part].append(f'{name},"{label}",{i},CC0' if part == "train_curated" else
                          f'{name},"{label}",Public,{i},CC0')  # fmt: skip
    text(
        meta / "train_curated_post_competition.csv",
        "fname,labels,freesound_id,license\n" + "\n".join(rows["train_curated"]) + "\n",
    )
    text(meta / "test_post_competition.csv",
         "fname,labels,usage,freesound_id,license\n" + "\n".join(rows["test"]) + "\n")  # fmt: skip
    return corpus


def _nigens_tree(root):
    corpus = root / "nigens"
    for fold in (1, 2, 3, 3, 3):
        for mix in range(2):
            name = f"fold{fold}_room1_mix{fold}{mix:02d}{len(list(corpus.glob('**/*.wav')))}_ov1"
            tone(corpus / "foa_dev" / f"{name}.wav", 24000, 2.0, channels=4)
            text(corpus / "metadata_dev" / f"{name}.csv", "2,6,0,0,0\n3,6,0,0,0\n12,1,0,0,0\n")
    return corpus


def test_joint_training_over_the_public_corpus_loaders_on_fake_trees(fakes, tmp_path, monkeypatch):
    monkeypatch.setenv("SPEECHBENCH_TAU_ASC2020_DIR", str(_tau_tree(tmp_path)))
    monkeypatch.setenv("SPEECHBENCH_FSDKAGGLE2019_DIR", str(_fsd_tree(tmp_path)))
    monkeypatch.setenv("SPEECHBENCH_TAU_NIGENS_DIR", str(_nigens_tree(tmp_path)))
    corpora = "corpus=tau-asc2020-mobile,fsdkaggle2019,tau-nigens-dcase2020"
    row = run([*FAST, corpora, "downstream.max_epochs=1", "downstream.finetune=false"]).row
    assert [c["name"] for c in row["corpora"]] == corpora.removeprefix("corpus=").split(",")
    m = row["metrics"]
    assert "accuracy@tau-asc2020-mobile" in m and "lwlrap@fsdkaggle2019" in m
    assert "segment_er@tau-nigens-dcase2020" in m and "psds1@tau-nigens-dcase2020" in m

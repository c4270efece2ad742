from typer.testing import CliRunner

from speechbench.cli import app

runner = CliRunner()


def test_list_shows_every_kind_with_metadata(sb_home):
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    for expected in (
        "== upstreams",
        "mfcc",
        "== downstreams",
        "asr",
        "== metrics",
        "wer",
        "== corpora",
        "mini-en",
    ):
        assert expected in result.output
    assert runner.invoke(app, ["list", "widgets"]).exit_code == 2


def test_user_errors_are_one_line_without_traceback(sb_home):
    for args, expected in [
        (["run", "upstream=nope"], "unknown upstream 'nope'; valid choices:"),
        (["run", "downstream.nope=1"], "unknown config key 'downstream.nope'; valid keys:"),
        (["run", "seed=abc"], "bad value 'abc' for seed: expected int"),
        (["run", "corpus=nope"], "unknown corpus 'nope'; valid choices:"),
        (["show", "missing"], "no run 'missing'"),
        (["leaderboard"], "no finished runs"),
        (["data", "prepare", "nope"], "unknown corpus 'nope'"),
    ]:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
        assert "Traceback" not in result.output


def test_run_runs_show_leaderboard_and_cache(sb_home, tmp_path):
    args = [
        "run",
        "upstream=mfcc",
        "corpus=tiny-synth",
        "downstream.max_epochs=2",
        "downstream.hidden=32",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "cer" in result.output and "wer" in result.output
    again = runner.invoke(app, args)
    assert "already done" in again.output
    listing = runner.invoke(app, ["runs"])
    run_id = listing.output.splitlines()[1].split()[0]
    assert '"status": "finished"' in runner.invoke(app, ["show", run_id]).output
    board = runner.invoke(app, ["leaderboard"])
    assert board.exit_code == 0 and "asr/tiny-synth v1 cer ↓" in board.output
    out = runner.invoke(app, ["leaderboard", "--out", str(tmp_path / "lb")])
    assert out.exit_code == 0 and (tmp_path / "lb" / "leaderboard.html").exists()
    provenance = (tmp_path / "lb" / "runs.jsonl").read_text().splitlines()
    assert len(provenance) == 1 and '"git_commit"' in provenance[0]
    assert "mfcc downstream.hidden=32" in board.output  # a non-default option names the row
    # another machine's runs.jsonl combines with this store (same run: counted once)
    combined = runner.invoke(app, ["leaderboard", "--include", str(tmp_path / "lb" / "runs.jsonl")])
    assert combined.exit_code == 0 and combined.output == board.output
    missing = runner.invoke(app, ["leaderboard", "--include", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 2 and "nope.jsonl: no such file" in missing.output
    assert "tiny-synth" in runner.invoke(app, ["cache", "ls"]).output
    assert "removed 3 cache entries" in runner.invoke(app, ["cache", "clear"]).output
    assert "tiny-synth" in runner.invoke(app, ["data", "list"]).output

import multiprocessing as mp

from speechbench.store import ResultsStore


def _writer(path, prefix, n):
    store = ResultsStore(path)
    for i in range(n):
        store.upsert(
            f"{prefix}-{i}",
            config_hash=f"h{prefix}{i}",
            status="running",
            metrics={"cer": i / n},
            config={"seed": i},
        )
        store.upsert(f"{prefix}-{i}", status="finished", primary_metric="cer")


def test_round_trip_and_finished_lookup(tmp_path):
    store = ResultsStore(tmp_path / "r.sqlite")
    store.upsert("a", config_hash="h1", status="running", config={"x": 1})
    assert store.find_finished("h1") is None
    store.upsert("a", status="finished", metrics={"cer": 0.25}, primary_metric="cer")
    row = store.find_finished("h1")
    assert row["run_id"] == "a" and row["metrics"] == {"cer": 0.25} and row["config"] == {"x": 1}


def test_concurrent_writers_leave_every_row_intact(tmp_path):
    path = tmp_path / "r.sqlite"
    ResultsStore(path)
    procs = [mp.get_context("spawn").Process(target=_writer, args=(path, p, 15)) for p in "ab"]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    rows = ResultsStore(path).runs()
    assert len(rows) == 30
    assert all(r["status"] == "finished" and "cer" in r["metrics"] for r in rows)

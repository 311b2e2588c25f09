"""status.json tells the truth while a run is going: a resumed or extended run does not show the
last completion's layer, seconds and time."""

from __future__ import annotations

from taskvec.storage.run_folder import RunFolder


def test_an_extended_run_drops_the_last_completions_figures(tmp_path):
    folder = RunFolder(tmp_path / "run")
    folder.start({"experiment": {"seeds": [1]}}, "hash-1", lineage="same")
    folder.finish(best_layer=12, seconds=30.5, peak_rss_mb=900)
    assert folder.status()["best_layer"] == 12 and "complete_at" in folder.status()

    folder.start({"experiment": {"seeds": [1, 2]}}, "hash-2", lineage="same")  # more seeds: extended
    status = folder.status()
    assert status["state"] == "running" and status["extended_from"] == "hash-1"
    assert not {"best_layer", "seconds", "peak_rss_mb", "complete_at"} & set(status)

    folder.finish(best_layer=11, seconds=61.0, peak_rss_mb=950)
    assert folder.status()["best_layer"] == 11 and folder.status()["state"] == "complete"


def test_a_resumed_run_drops_them_too(tmp_path):
    folder = RunFolder(tmp_path / "run")
    folder.start({}, "hash-1")
    folder.finish(layer=3, seconds=2.0)
    folder.start({}, "hash-1")
    assert not {"layer", "seconds", "complete_at"} & set(folder.status())


def test_an_extended_run_drops_its_old_report(tmp_path):
    """Killed after "complete" but before its new report, an extended run showed the old seeds'
    tables and report.md beside a complete status; its units and vectors stay for reuse."""
    folder = RunFolder(tmp_path / "run")
    folder.start({"experiment": {"seeds": [1]}}, "hash-1", lineage="same")
    report = ["tables/summary_paper.csv", "plots/val_curve.png", "report.md", "report.html"]
    report.append("report_context.json")
    for part in [*report, "units/a__seed1.json"]:
        (folder.root / part).parent.mkdir(parents=True, exist_ok=True)
        (folder.root / part).write_text("seed 1")
    folder.finish(best_layer=12)
    folder.start({"experiment": {"seeds": [1, 2]}}, "hash-2", lineage="same")
    # a reproduction's report.html and report_context.json stayed, with the old configuration's numbers
    assert not any((folder.root / part).exists() for part in report)
    assert (folder.root / "units" / "a__seed1.json").read_text() == "seed 1"

"""The protocol end to end on the real SmolLM2 (one task, one seed, spaced template), and how a
run shares work between its seeds (on a tiny LLaVA)."""

import json
import re

import pytest
from PIL import Image

from taskvec.errors import ConfigError, LayerError, ModelSpecError, TaskFileError
from taskvec.evaluation import protocol
from taskvec.evaluation.protocol import ExperimentConfig
from taskvec.evaluation.scoring import layer_curve
from taskvec.models.shared_work import prompts_digest
from taskvec.pipelines.evaluate import evaluate
from taskvec.report.tables import write_run_report
from taskvec.storage.run_folder import RunFolder
from taskvec.tasks.registry import load_task

CONFIG = dict(tasks=["country_capital"], seeds=[1], template="spaced")


@pytest.fixture(scope="module")
def capital_run(smollm2, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "capital"
    result = evaluate(ExperimentConfig(**CONFIG), out, adapter=smollm2, show_progress=False)
    write_run_report(result)  # as `taskvec run` does
    return result


def test_xpatch_beats_no_context_on_validation_by_a_wide_margin(capital_run):
    unit = RunFolder(capital_run.folder.root).load_unit("country_capital", 1)
    no_context = sum(
        row["no_context"].strip().lower() in [t.strip().lower() for t in row["label_first_tokens"]]
        for row in unit["val"]
    ) / len(unit["val"])
    curve = layer_curve(capital_run.val_scores, "strict").loc["average"]
    # measured: best val strict 0.43 at layer 22, No Context 0.07 (seed 1)
    assert curve.max() - no_context >= 0.25
    assert 18 <= int(curve.idxmax()) <= 26


def test_run_folder_is_complete_and_self_describing(capital_run):
    root = capital_run.folder.root
    assert json.loads((root / "status.json").read_text())["state"] == "complete"
    config = json.loads((root / "config.json").read_text())
    assert config["experiment"]["template"]["name"] == "spaced" and config["model"]["num_layers"] == 30
    for name in (
        "predictions.jsonl",
        "report.md",
        "plots/val_curve.png",
        "tables/summary_paper.csv",
        "tables/val_curve_paper.csv",
        "tables/summary_exact_formatted.md",
        "tables/summary_whole_label_formatted.md",
        "tables/summary_paper_whole_label.md",
        "tables/answer_diversity.csv",
        "vectors/country_capital__text-icl__seed1.safetensors",
        "vectors/country_capital__text-icl__seed1.json",
    ):
        assert (root / name).is_file(), name
    rows = [json.loads(line) for line in (root / "predictions.jsonl").read_text().splitlines()]
    assert {r["method"] for r in rows} == {"no_context", "majority", "label_prior", "xbase", "xpatch"}
    assert len([r for r in rows if r["method"] == "xpatch"]) == 100
    assert all(isinstance(r["whole_label"], bool) for r in rows)
    assert config["experiment"]["layer_selection"] == "shared"


def test_rerun_reuses_finished_units_and_gives_the_same_table(capital_run, smollm2, monkeypatch):
    def fail(*_args, **_kwargs):
        raise AssertionError("a finished unit was recomputed")

    monkeypatch.setattr("taskvec.pipelines.evaluate.run_unit", fail)
    again = evaluate(
        ExperimentConfig(**CONFIG), capital_run.folder.root, adapter=smollm2, show_progress=False
    )
    assert again.best_layer == capital_run.best_layer
    assert again.predictions.equals(capital_run.predictions)


def test_another_config_in_the_same_folder_is_refused(capital_run, smollm2):
    with pytest.raises(
        ConfigError, match=r"holds another run \(experiment.n_examples: 5 in the folder, 4 now\)"
    ):
        evaluate(
            ExperimentConfig(**{**CONFIG, "n_examples": 4}),
            capital_run.folder.root,
            adapter=smollm2,
            show_progress=False,
        )


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        ({"tasks": ["no_such_task"]}, TaskFileError, "unknown task"),
        ({"model": "no-such-model"}, ModelSpecError, "unknown model"),
        ({"layers": [30]}, LayerError, "out of range"),
        ({"n_examples": 30}, ConfigError, "too few"),
        ({"query": "image"}, ConfigError, "text-only"),
    ],
)
def test_bad_input_fails_before_any_result_is_written(smollm2, tmp_path, overrides, error, message):
    out = tmp_path / "run"
    adapter = None if "model" in overrides else smollm2
    with pytest.raises(error, match=message):
        evaluate(ExperimentConfig(**{**CONFIG, **overrides}), out, adapter=adapter, show_progress=False)
    assert not out.exists()


def test_unit_prompts_end_at_the_delimiter_and_never_show_the_query_as_a_demo():
    from taskvec.tasks.registry import load_task

    task = load_task("country_capital")
    prompts = protocol.UnitPrompts(task, ExperimentConfig(**CONFIG), seed=1)
    for item, demos, prompt in zip(task.val, prompts.val_demos, prompts.extraction, strict=True):
        assert item.id not in {d.id for d in demos}
        assert prompt[-1].endswith(f"Q: {item.input}\nA:")
    assert all(q[-1].endswith("A:") for q in prompts.test_queries)


def test_the_prompt_digest_sees_every_pixel_and_character():
    red, blue = Image.new("RGB", (4, 4), "red"), Image.new("RGB", (4, 4), "blue")
    assert prompts_digest([("Q:", red, "\nA:")]) == prompts_digest([("Q:", red.copy(), "\nA:")])
    assert prompts_digest([("Q:", red, "\nA:")]) != prompts_digest([("Q:", blue, "\nA:")])
    assert prompts_digest([("Q:", "\nA:")]) != prompts_digest([("Q:\nA:",)])
    assert prompts_digest([("Q:",), ("A:",)]) != prompts_digest([("Q:", "A:")])


def test_chosen_layer_test_split_gives_the_same_predictions_without_the_test_sweep(
    capital_run, smollm2, tmp_path, monkeypatch
):
    """``test_layers="chosen"`` skips the all-layer test sweep; the layer choice and every test
    prediction stay those of the full run (xPatch read from the chosen layer's answers)."""
    swept = []
    real_sweep = protocol.sweep
    monkeypatch.setattr(
        protocol,
        "sweep",
        lambda adapter, queries, *a, **k: swept.append(len(queries)) or real_sweep(adapter, queries, *a, **k),
    )
    config = ExperimentConfig(**CONFIG, test_layers="chosen")
    chosen = evaluate(config, tmp_path / "chosen", adapter=smollm2, show_progress=False)
    write_run_report(chosen)
    assert swept == [30]  # the validation sweep only
    assert chosen.best_layer == capital_run.best_layer
    columns = ["item", "method", "prediction", "answer", "paper", "whole_label", "strict", "exact"]
    assert chosen.predictions[columns].equals(capital_run.predictions[columns])
    tables = chosen.folder.root / "tables"
    assert (tables / "val_curve_paper.csv").is_file() and not (tables / "test_curve_paper.csv").exists()


def test_the_seeds_of_a_run_share_their_queries_work(tmp_path, monkeypatch):
    """A task's seeds ask the same test queries: a run computes their No Context answers once and
    the seeds' chosen-layer xPatch answers in one pass over the queries (xBase differs by seed)."""
    from helpers.families import llava

    adapter = llava.build_llava()
    answered, patched = [], []
    real_generate, real_under_patches = protocol.generate_ids, protocol.generate_ids_under_patches
    monkeypatch.setattr(
        protocol,
        "generate_ids",
        lambda a, prompts, *r, **k: (
            answered.append(prompts_digest(prompts)) or real_generate(a, prompts, *r, **k)
        ),
    )
    monkeypatch.setattr(
        protocol,
        "generate_ids_under_patches",
        lambda a, prompts, patches, *r: (
            patched.append(len(patches)) or real_under_patches(a, prompts, patches, *r)
        ),
    )
    config = ExperimentConfig(
        tasks=["country_capital"],
        seeds=[1, 2, 3],
        layers=[0, 1],
        query="image",
        answer_tokens=2,
        test_layers="chosen",
        model=adapter.name,
    )
    evaluate(config, tmp_path / "run", adapter=adapter, show_progress=False)
    task = load_task("country_capital")
    queries = prompts_digest(protocol.UnitPrompts(task, config, 1).test_queries)
    assert answered.count(queries) == 1  # No Context, for all three seeds
    assert len(answered) == 1 + 3  # and each seed's xBase prompts
    assert patched == [3]


def test_an_instruction_runs_xbase_prompts_run_the_instruction_once(smollm2, tmp_path, monkeypatch):
    """Every xBase prompt of an instruction run begins with the instruction: it runs once for all
    queries, and the answers are those of the whole prompts."""
    import taskvec.patching.shared_prefix as shared_prefix
    from taskvec.patching.patch import generate_ids, line_complete

    run = []
    real_batch = shared_prefix._run_batch
    monkeypatch.setattr(
        shared_prefix,
        "_run_batch",
        lambda adapter, prefixes, *a: run.extend(prefixes) or real_batch(adapter, prefixes, *a),
    )
    config = ExperimentConfig(**{**CONFIG, "spec": "instruction"}, layers=[8], test_layers="chosen")
    result = evaluate(config, tmp_path / "instruction", adapter=smollm2, show_progress=False)
    task = load_task("country_capital")
    assert run == [config.template.instruction_lead(task.instruction)]
    prompts = protocol.UnitPrompts(task, config, 1).test_base
    whole = generate_ids(
        smollm2, prompts, None, config.answer_tokens, config.budget(smollm2), line_complete(smollm2)
    )
    unit = RunFolder(result.folder.root).load_unit("country_capital", 1)
    assert [row["xbase_answer"] for row in unit["test"]] == [smollm2.decode(ids) for ids in whole]


def test_the_report_gives_xpatchs_differences_with_their_interval_over_the_items(capital_run):
    """The tables' ± is the spread over seeds, which share their test items: the report says so,
    and gives xPatch minus each method on those items with a 95% interval (100 items, one seed:
    each difference is the mean of 100 paired differences of 0, 1 or -1)."""
    import math

    import pandas as pd

    root = capital_run.folder.root
    found = pd.read_csv(root / "tables" / "differences.csv")
    rows = pd.DataFrame(json.loads(line) for line in (root / "predictions.jsonl").read_text().splitlines())
    row = found.set_index(["comparison", "metric"]).loc[("xPatch - xBase", "paper")]
    by_item = [
        rows[rows.method == method].set_index("item")["paper"].astype(float) for method in ("xpatch", "xbase")
    ]
    d = by_item[0] - by_item[1]
    error = math.sqrt(d.var(ddof=1) / len(d))
    assert row["difference"] == pytest.approx(d.mean(), abs=1e-6) and row["items"] == 100
    assert row["high"] - row["difference"] == pytest.approx(1.959964 * error, abs=1e-5)
    methods = ("xBase", "No Context", "Majority", "Label prior")
    assert set(found.comparison) == {f"xPatch - {m}" for m in methods}
    report = (root / "report.md").read_text()
    assert "## xPatch against the other methods, item by item" in report
    cell = f"{row['difference']:+.2f} ({row['low']:+.2f} to {row['high']:+.2f})"
    assert re.search(rf"\| xPatch - xBase +\| {re.escape(cell)} ", report)

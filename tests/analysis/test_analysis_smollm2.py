"""Analyses on the real SmolLM2-135M (30 layers): the logit lens is the model's own read-out, and
a country -> capital task vector decodes to "capital" at an intermediate layer.

Measured with the paper template, seed 1, 10 validation prompts per vector, 4 test prompts:
" capital" is in the vector's top-5 at layers 27 and 28 only (not at the last layer, 29); the
mean mass on task tokens peaks at layer 27 (0.031) and is 0.001 at layer 29; answer-token mass
reaches 0.50 (layer 23) in the second half and stays below 0.03 in the first quarter.
"""

import json

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from taskvec.analysis import collect, decode_vector, lens_logits, phase_curve, phase_masses, token_sets
from taskvec.analysis.collect import unit_config
from taskvec.analysis.lens import MASS, lens_top1
from taskvec.errors import ConfigError
from taskvec.evaluation.protocol import ExperimentConfig, UnitPrompts, task_vector_for
from taskvec.models.shared_work import SharedWork
from taskvec.prompts.template import PAPER
from taskvec.tasks.registry import load_task
from taskvec.vectors.extract import last_token_states

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def capital():
    return load_task("country_capital")


@pytest.fixture(scope="module")
def capital_states(smollm2, capital):
    return collect(smollm2, capital, "text-icl", PAPER, extraction_prompts=10, prompts=4)


def test_logit_lens_at_the_last_layer_is_the_models_own_logits(smollm2, capital):
    unit = UnitPrompts(capital, ExperimentConfig(template="paper", n_examples=2), seed=1)
    prompts = [unit.extraction[0], *unit.test_queries[:2]]  # ICL and bare queries, padded together
    states = last_token_states(smollm2, prompts)  # [3, layers, hidden]
    with torch.no_grad():
        own = smollm2.forward(smollm2.encode(prompts)).logits[:, -1].float()
    lens = lens_logits(smollm2, states[:, -1])
    torch.testing.assert_close(lens, own, atol=1e-4, rtol=1e-4)
    assert lens.argmax(-1).tolist() == own.argmax(-1).tolist()
    # an earlier layer is a different read-out (the test would catch a lens that ignored the layer)
    assert not torch.allclose(lens_logits(smollm2, states[:, -2]), own, atol=1e-2)


def test_capital_vector_decodes_to_a_capital_token_at_an_intermediate_layer(smollm2, capital, capital_states):
    task_ids = set(token_sets(smollm2, capital, PAPER).ids["task"])
    last = smollm2.num_layers - 1
    hits = {}
    for layer in range(smollm2.num_layers):
        top = decode_vector(smollm2, capital_states.vector.at(layer), k=5)
        found = list(top.loc[top["token_id"].isin(task_ids), "token"])
        if found:
            hits[layer] = found
    assert hits, "no capital-city token in any layer's top-5"
    assert all(smollm2.num_layers // 2 <= layer < last for layer in hits), hits
    assert all(" capital" in found for found in hits.values()), hits
    assert last not in hits


def test_task_tokens_peak_between_the_early_layers_and_the_answer(smollm2, capital, capital_states):
    curve = phase_curve(phase_masses(smollm2, capital_states.states, token_sets(smollm2, capital, PAPER)))
    layers = smollm2.num_layers
    task, answer = curve[MASS["task"]], curve[MASS["answer"]]
    assert ((curve >= 0) & (curve <= 1)).all().all()
    assert (curve.sum(axis=1) <= 1 + 1e-5).all()  # the sets are disjoint
    peak = int(task.idxmax())
    assert layers // 2 <= peak < layers - 1
    assert task[peak] > 10 * task[layers - 1]
    assert answer[layers // 2 :].max() > 10 * answer[: layers // 4].max()


def test_image_icl_on_a_text_model_is_refused(smollm2, capital):
    with pytest.raises(ConfigError, match="text-only"):
        collect(smollm2, capital, "image-icl", PAPER, prompts=1)


def test_analyze_command_writes_tables_plots_and_summary(smollm2, tmp_path, monkeypatch):
    """`taskvec analyze --run`: takes the run's settings and chosen layer, writes into <run>/analysis."""
    from taskvec.cli import app

    monkeypatch.setattr("taskvec.pipelines.analyze.load_model", lambda name, *a, **k: smollm2)
    run = tmp_path / "run"
    run.mkdir()
    experiment = ExperimentConfig(tasks=["country_capital", "food_color"], template="paper", seeds=[2])
    (run / "config.json").write_text(json.dumps({"experiment": experiment.model_dump(mode="json")}))
    (run / "status.json").write_text(json.dumps({"state": "complete", "best_layer": 12}))
    results = {"config": {"experiment": experiment.model_dump(mode="json")}, "chosen_layer": 12}
    (run / "results.json").write_text(json.dumps({**results, "selection_metric": "paper"}))
    options = ["--n-examples", "2", "--prompts", "2", "--extraction-prompts", "2", "--embedding", "pca"]
    result = CliRunner().invoke(app, ["analyze", "--run", str(run), *options])
    assert result.exit_code == 0, result.output
    folder = run / "analysis"
    status = json.loads((folder / "status.json").read_text())
    assert status["state"] == "complete"
    assert status["layer"] == 12 and "chosen by the run" in status["layer_source"]
    config = json.loads((folder / "config.json").read_text())
    assert config["analysis"]["template"]["name"] == "paper" and config["analysis"]["seed"] == 2
    assert config["analysis"]["n_examples"] == 2  # the option wins over the run's 5
    assert config["specs"] == ["text-icl", "instruction"]
    for plot in ("phases", "top1_text-icl", "top1_instruction", "similarity_layer12", "similarity_by_layer"):
        assert (folder / "plots" / f"{plot}.png").stat().st_size > 1000
    assert (folder / "plots" / "embedding_pca.png").is_file()
    decodings = pd.read_csv(folder / "tables" / "decodings.csv", keep_default_na=False)
    assert len(decodings) == 2 * 2 * 5 and set(decodings["layer"]) == {12}
    curves = pd.read_csv(folder / "tables" / "phase_curves.csv")
    assert len(curves) == 2 * 2 * smollm2.num_layers
    similarity = pd.read_csv(folder / "tables" / "similarity_by_layer.csv", index_col="layer")
    assert list(similarity.columns) == ["same_task", "same_spec", "different_both", "random_pair", "margin"]
    summary = (folder / "summary.md").read_text()
    assert "layer **12**" in summary and "Three phases" in summary and "plots/phases.png" in summary
    assert len(list((folder / "vectors").glob("*.safetensors"))) == 4
    # the layers named "above its baseline" are those of a clear margin, not of a few 1e-4
    from taskvec.analysis.lens import layer_ranges
    from taskvec.report.analysis import CLEAR_MARGIN

    clear = layer_ranges(similarity.index[similarity["margin"] >= CLEAR_MARGIN].tolist()) or "none"
    assert f"above its baseline by {CLEAR_MARGIN} or more at layers: {clear};" in summary


def test_an_analysis_borrows_the_protocol_units_delimiter_states(smollm2, capital):
    """A reproduction's analysis reads the vectors its seed-1 units computed: the same vector,
    no second forward pass of the extraction prompts."""
    shared = SharedWork()
    config = unit_config(smollm2, capital, "text-icl", PAPER, "noto", 5, 1, 1024)
    unit_vector = task_vector_for(smollm2, UnitPrompts(capital, config, 1), shared)
    assert shared.tally[("last-token states", "computed")] == 1
    got = collect(smollm2, capital, "text-icl", PAPER, prompts=2, shared=shared)
    assert torch.equal(got.vector.vectors, unit_vector.vectors)
    assert shared.tally[("last-token states", "reused")] == 1
    assert shared.tally[("last-token states", "computed")] == 1


def test_top1_lens_tokens_are_the_argmax_of_the_lens_logits(smollm2, capital_states):
    states = capital_states.states  # [prompts, layers, hidden]
    assert torch.equal(lens_top1(smollm2, states), lens_logits(smollm2, states).argmax(-1))

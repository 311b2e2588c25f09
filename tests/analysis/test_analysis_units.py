"""The analysis pieces that need no model: phase ranges, similarity summaries, embeddings, token-set
files."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from taskvec.analysis.embedding import cluster_purity, embed, embedding_frame, umap_available
from taskvec.analysis.lens import MASS, decodings_table, layer_ranges, phase_ranges, top1_distribution
from taskvec.analysis.similarity import cosine_matrix, pair_summary, same_task_cosines, similarity_by_layer
from taskvec.analysis.token_sets import PHASES, instruction_words, load_words
from taskvec.errors import ConfigError, TaskFileError
from taskvec.report.plots import plot_top1, token_label
from taskvec.tasks.registry import BUILTIN_TASKS, load_task


def test_layer_ranges_compress_runs():
    assert layer_ranges([20, 2, 21, 22, 29]) == "2, 20-22, 29"
    assert layer_ranges([]) == ""


def test_phase_ranges_give_each_layer_to_the_phase_nearest_its_own_peak():
    # task mass is tiny in absolute terms but peaks at layer 3: layer 3 must still be the task phase
    curve = pd.DataFrame(
        {
            MASS["input"]: [0.5, 0.4, 0.01, 0.05, 0.01],
            MASS["task"]: [0.0, 0.0, 0.001, 0.02, 0.002],
            MASS["answer"]: [0.0, 0.01, 0.1, 0.3, 0.8],
        }
    )
    ranges = phase_ranges(curve)
    assert ranges.loc["input", "layers"] == "0-1"
    assert ranges.loc["task", "layers"] == "3"
    assert ranges.loc["answer", "layers"] == "4"
    assert ranges.loc["task", "peak_layer"] == 3
    # layer 2 reaches half of no phase's peak, so it belongs to none
    assert ranges["layers"].str.contains("2").sum() == 0


def _unit(direction: int, size: int = 4) -> torch.Tensor:
    vector = torch.zeros(size)
    vector[direction] = 1.0
    return vector


def test_a_decoded_byte_piece_is_shown_by_its_id_not_as_a_replacement_character():
    """A token that is one byte of a multi-byte letter decodes alone to '\ufffd'; the table showed
    a bare '\ufffd', as if the model predicted that character."""
    decodings = pd.DataFrame(
        {
            "task": ["t", "t", "t"],
            "spec": ["text-icl"] * 3,
            "rank": [2, 1, 3],
            "token_id": [477, 88621, 12],
            "token": ["\ufffd", " Johannesburg", "\n"],
        }
    )
    cell = decodings_table(decodings).loc["t", "text-icl"]
    assert cell == "' Johannesburg', token 477 (part of a character), '\\n'"


def test_pair_summary_separates_same_task_from_random_pairs():
    # a, b orthogonal; each task's two specs share their direction up to a small tilt
    tilt = 0.1 * _unit(2)
    vectors = {
        ("a", "text-icl"): _unit(0),
        ("a", "instruction"): _unit(0) + tilt,
        ("b", "text-icl"): _unit(1),
        ("b", "instruction"): _unit(1) + tilt,
    }
    matrix = cosine_matrix(vectors)
    assert np.allclose(np.diag(matrix), 1.0)
    assert np.allclose(matrix.to_numpy(), matrix.to_numpy().T)
    summary = pair_summary(matrix)
    same = 1 / np.sqrt(1.01)  # cos(e0, e0 + 0.1 e2)
    assert summary["same_task"] == pytest.approx(same)
    # different-task pairs: (e0, e1)=0, (e0, e1+t)=0, (e0+t, e1)=0, (e0+t, e1+t)=0.01/1.01
    assert summary["random_pair"] == pytest.approx((0.01 / 1.01) / 4)
    assert summary["same_spec"] == pytest.approx((0 + 0.01 / 1.01) / 2)
    assert summary["different_both"] == pytest.approx(0.0)  # (e0, e1 + t) and (e0 + t, e1)


def test_similarity_by_layer_reads_every_layer():
    vectors = {
        ("a", "text-icl"): torch.stack([_unit(0), _unit(0)]),
        ("a", "instruction"): torch.stack([_unit(1), _unit(0)]),  # agree only at layer 1
        ("b", "text-icl"): torch.stack([_unit(2), _unit(2)]),
    }
    frame = similarity_by_layer(vectors)
    assert list(frame.index) == [0, 1]
    assert frame.loc[0, "same_task"] == pytest.approx(0.0)
    assert frame.loc[1, "same_task"] == pytest.approx(1.0)
    assert frame.loc[1, "margin"] == pytest.approx(1.0)  # same_task 1 - different_both 0


def test_same_task_cosines_pair_every_task_of_one_source_with_every_task_of_the_other_per_seed():
    generator = torch.Generator().manual_seed(0)
    tasks, seeds = ["a", "b", "c"], [1, 2]
    directions = {t: torch.randn(16, generator=generator) for t in tasks}  # one direction per task
    first = {(t, s): directions[t] + 0.1 * torch.randn(16, generator=generator) for t in tasks for s in seeds}
    second = {(t, s): 3 * directions[t] for t in tasks for s in seeds}
    same, different = same_task_cosines(first, second, tasks, seeds)

    def cosine(x, y):
        return float(x @ y / (x.norm() * y.norm()))

    pairs = [(a, b, s) for s in seeds for a in tasks for b in tasks]
    assert same == pytest.approx(np.mean([cosine(first[a, s], second[b, s]) for a, b, s in pairs if a == b]))
    assert different == pytest.approx(
        np.mean([cosine(first[a, s], second[b, s]) for a, b, s in pairs if a != b])
    )
    assert same > 0.9 and abs(different) < same  # near copies of one direction against the others


def test_one_task_has_a_same_task_cosine_and_no_baseline():
    """A reproduction of one task: no pair of different tasks, so the baseline is NaN (it divided
    by zero after the whole reproduction had run)."""
    vector = torch.arange(1.0, 5.0)
    same, different = same_task_cosines({("a", 1): vector}, {("a", 1): 2 * vector}, ["a"], [1])
    assert same == pytest.approx(1.0) and np.isnan(different)


def test_embedding_frame_labels_every_point_and_separated_clusters_are_pure():
    generator = torch.Generator().manual_seed(0)
    states = {
        ("a", "text-icl"): torch.randn(6, 16, generator=generator) * 0.1 + 5,
        ("a", "instruction"): torch.randn(4, 16, generator=generator) * 0.1 + 5,
        ("b", "text-icl"): torch.randn(6, 16, generator=generator) * 0.1 - 5,
    }
    for method in ("pca", "tsne"):
        frame = embedding_frame(states, method)
        assert len(frame) == 16
        assert frame.groupby(["task", "spec"]).size().to_dict() == {
            ("a", "instruction"): 4,
            ("a", "text-icl"): 6,
            ("b", "text-icl"): 6,
        }
        assert np.isfinite(frame[["x", "y"]].to_numpy()).all()
        assert cluster_purity(frame) == 1.0


def test_embedding_refuses_too_few_points_and_missing_umap():
    with pytest.raises(ValueError, match="at least 3"):
        embed(np.zeros((2, 4)))
    if not umap_available():
        with pytest.raises(ValueError, match="umap-learn"):
            embed(np.random.default_rng(0).normal(size=(5, 4)), "umap")


def test_an_analysis_asking_for_umap_without_umap_learn_fails_before_any_forward_pass(monkeypatch):
    """Its options are refused when they are made, not after the forward passes (the embedding
    is the analysis's last step)."""
    import taskvec.pipelines.analyze as analyze

    monkeypatch.setattr(analyze, "umap_available", lambda: False)
    with pytest.raises(ConfigError, match="umap needs the umap-learn package"):
        analyze.AnalysisConfig.create(model="smollm2-135m", tasks=["food_color"], embeddings=["pca", "umap"])
    assert analyze.AnalysisConfig.create(model="smollm2-135m", tasks=["food_color"], embeddings=["pca"])


def test_top1_distribution_shares_sum_to_one_with_other():
    tokens = ["x", "x", "y", "z", "w"]
    top1 = pd.DataFrame({"prompt": range(5), "layer": [3] * 5, "token_id": range(5), "token": tokens})
    dist = top1_distribution(top1, keep=2)
    assert list(dist["token"]) == ["x", "y", "(other)"]
    assert list(dist["count"]) == [2, 1, 2]
    assert dist["share"].sum() == pytest.approx(1.0)


def test_shipped_token_sets_cover_the_six_tasks():
    words = load_words()
    assert set(BUILTIN_TASKS) <= set(words)
    for task in BUILTIN_TASKS:
        assert set(words[task]) == set(PHASES)
        assert words[task]["task"], f"{task} has no task words"


def test_token_set_file_errors_name_the_problem(tmp_path):
    bad = tmp_path / "sets.json"
    bad.write_text(json.dumps({"country_capital": {"task": "capital"}}))
    with pytest.raises(TaskFileError, match="country_capital.task"):
        load_words(bad)
    bad.write_text(json.dumps({"country_capital": {"phase4": []}}))
    with pytest.raises(TaskFileError, match="must map"):
        load_words(bad)
    with pytest.raises(TaskFileError, match="not found"):
        load_words(tmp_path / "missing.json")
    bad.write_text(json.dumps([["country_capital", "capital"]]))  # a list ended in AttributeError
    with pytest.raises(TaskFileError, match="expected an object of task name -> .*not list"):
        load_words(bad)


def test_tasks_without_listed_words_fall_back_to_their_instruction():
    task = load_task("country_currency")  # "The last word of the official currency of the country:"
    assert instruction_words(task) == ["currency", "country"]


def test_token_labels_escape_what_the_font_cannot_draw_and_plots_draw_every_label(tmp_path):
    assert token_label(" Paris") == "' Paris'"  # the leading space stays visible
    assert token_label("é\n") == "'é\\n'"
    assert token_label("隸") == "'\\u96b8'"  # CJK: not in the plots' default font
    distribution = pd.DataFrame(
        {"task": "t", "layer": [3, 3, 3], "token": ["隸", " Paris", "【"], "share": [0.5, 0.3, 0.2]}
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*missing from font")
        path = plot_top1(distribution, tmp_path / "top1.png")
    assert path.stat().st_size > 0


def test_a_pca_map_says_how_much_of_the_variance_its_axes_carry():
    """The PCA plot has no scale and its table only x and y: nothing told a reader that the second
    axis carried a quarter of the first's variance, or that both carried half of the whole."""
    from sklearn.decomposition import PCA

    from taskvec.report.analysis import _variance_shown

    generator = torch.Generator().manual_seed(0)
    states = {("t", "text-icl"): torch.randn(12, 8, generator=generator) * torch.arange(8, 0, -1)}
    frame = embedding_frame(states, "pca")
    expected = PCA(n_components=2).fit(states[("t", "text-icl")].numpy()).explained_variance_ratio_
    assert frame.attrs["explained_variance"] == pytest.approx(tuple(expected), rel=1e-6)
    first, second = frame.attrs["explained_variance"]
    assert _variance_shown(frame) == f"\n(PC1 {first:.0%}, PC2 {second:.0%} of the variance)"
    assert "explained_variance" not in embedding_frame(states, "tsne").attrs


def test_a_token_set_file_naming_no_task_of_the_analysis_is_refused(tmp_path):
    """``{"shape_colr": ...}`` given for task ``shape_color`` was ignored in silence: the task's
    phase curves used its instruction's words instead of the file's."""
    from taskvec.analysis.token_sets import check_words_name_tasks
    from taskvec.errors import TaskFileError
    from taskvec.tasks.registry import load_task

    tasks = [load_task("food_color"), load_task("food_flavor")]
    typo = {"food_colr": {"task": ["color"]}, "food_flavor": {"task": ["taste"]}}
    with pytest.raises(TaskFileError, match=r"its entries 'food_colr' name no task .* 'food_color' has none"):
        check_words_name_tasks(typo, tasks, tmp_path / "sets.json")
    every_task_and_more = {**typo, "food_color": {"task": ["color"]}}  # extra entries beside each task's own
    check_words_name_tasks(every_task_and_more, tasks, tmp_path / "sets.json")
    check_words_name_tasks(load_words(), tasks, "shipped")

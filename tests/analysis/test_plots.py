"""The analysis figures read well: whole-layer ticks, a colour scale fitted to the cosines, legends
inside the picture, no column of one repeated token."""

from __future__ import annotations

import numpy as np
import pandas as pd

from taskvec.report import plots

TASKS = ["country_capital", "animal_young"]
SPECS = ["text-icl", "image-icl", "instruction"]
PHASES = ("input", "task", "answer")
SIMILARITIES = ("same_task", "same_spec", "different_both", "random_pair")


def _curves(layers: int = 18) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = [
        {"task": t, "spec": s, "layer": layer, **{f"{p}_mass": rng.random() for p in PHASES}}
        for t in TASKS
        for s in SPECS
        for layer in range(layers)
    ]
    return pd.DataFrame(rows)


def _layer_ticks(axis) -> list[str]:
    axis.figure.canvas.draw()
    return [label.get_text().replace("\N{MINUS SIGN}", "-") for label in axis.get_xticklabels()]


def test_phase_panels_tick_whole_layers_and_keep_the_legend_inside(tmp_path, saved_figures):
    plots.plot_phases(_curves(), tmp_path / "phases.png")
    figure = saved_figures[-1]
    ticks = _layer_ticks(figure.axes[0])
    assert ticks and all(t.lstrip("-").isdigit() for t in ticks), ticks
    legend = figure.legends[0].get_window_extent()
    box = figure.bbox
    assert box.x0 <= legend.x0 and legend.x1 <= box.x1 and box.y0 <= legend.y0 and legend.y1 <= box.y1
    for axis in figure.axes:  # the legend overlaps no panel
        assert not legend.overlaps(axis.get_window_extent())


def test_similarity_by_layer_ticks_whole_layers(tmp_path, saved_figures):
    frame = pd.DataFrame(
        {name: np.linspace(0.8, 1, 18) for name in SIMILARITIES},
        index=pd.RangeIndex(18, name="layer"),
    )
    plots.plot_similarity_by_layer(frame, tmp_path / "by_layer.png")
    ticks = _layer_ticks(saved_figures[-1].axes[0])
    assert ticks and all(t.lstrip("-").isdigit() for t in ticks), ticks


def test_the_heatmap_colour_scale_spans_the_data_not_zero_to_one(tmp_path, saved_figures):
    keys = pd.MultiIndex.from_product([TASKS, SPECS], names=["task", "spec"])
    rng = np.random.default_rng(1)
    values = 0.86 + 0.12 * rng.random((len(keys), len(keys)))
    np.fill_diagonal(values, 1.0)
    plots.plot_similarity(pd.DataFrame(values, index=keys, columns=keys), tmp_path / "sim.png")
    low, high = saved_figures[-1].axes[0].get_images()[0].get_clim()
    assert 0.8 <= low <= values.min() and values.max() <= high <= 1.0


def test_the_heatmap_scale_stops_at_one_where_float_rounding_passes_it(tmp_path, saved_figures):
    """A vector with itself comes out at 1.0000005 in float32: the scale went to 1.05, a colour
    no cell could have."""
    keys = pd.MultiIndex.from_product([TASKS, SPECS], names=["task", "spec"])
    values = np.full((len(keys), len(keys)), 0.9)
    np.fill_diagonal(values, 1.0000005)
    plots.plot_similarity(pd.DataFrame(values, index=keys, columns=keys), tmp_path / "sim.png")
    low, high = saved_figures[-1].axes[0].get_images()[0].get_clim()
    assert (low, high) == (0.9, 1.0)


def test_top1_draws_no_column_of_one_repeated_token_and_names_it(tmp_path, saved_figures):
    rows = []
    for task in TASKS:
        rows.append({"task": task, "layer": 4, "token": "nachweise", "count": 50, "share": 1.0})
        rows.append({"task": task, "layer": 11, "token": f" {task}", "count": 30, "share": 0.6})
        rows.append({"task": task, "layer": 11, "token": " other", "count": 20, "share": 0.4})
    plots.plot_top1(pd.DataFrame(rows), tmp_path / "top1.png")
    figure = saved_figures[-1]
    titles = {axis.get_title() for axis in figure.axes}
    assert titles == {"layer 11", ""}
    assert "nachweise" in figure.get_supxlabel() and "layer 4" in figure.get_supxlabel()

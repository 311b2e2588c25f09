"""Every analysis table from the states one pass of ``collect`` gathered: phases, top-1 and vector
decodings, similarity and embeddings, and the layer they are read at. Pure computation: the
analysis pipeline (``taskvec.pipelines.analyze``) writes the results into its folder."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from taskvec.analysis.collect import SpecStates
from taskvec.analysis.embedding import cluster_purity, embedding_frame
from taskvec.analysis.lens import (
    MASS,
    decodings_table,
    phase_ranges,
    top1_decodings,
    top1_distribution,
    vector_decodings,
)
from taskvec.analysis.similarity import cosine_matrix, similarity_by_layer
from taskvec.models.adapter import ModelAdapter

#: where the analysis layer came from (``AnalysisTables.layer_source``): given in the options, ...
LAYER_GIVEN = "given"
#: ... the layer of the ``taskvec run`` analysed (one for all its tasks, ``shared``), ...
LAYER_OF_RUN = "chosen by the run on its validation split"
#: ... of a ``per-task`` run, which read each task at its own layer, its tasks' mean curve's best, ...
LAYER_OF_RUN_MEAN = "the best of the run's mean validation curve"
#: ... or, with neither, the phase curves' task peak
LAYER_PEAK = "peak of the mean task-token mass"


@dataclass
class AnalysisTables:
    """The tables by name (``tables``: what the folder's CSV files hold) and how they were read:
    the ``layer`` of the decodings, similarity and embeddings and where it came from
    (``layer_source``), the top-1 ``decode_layers``, and each embedding's cluster ``purity``."""

    tables: dict[str, pd.DataFrame]
    layer: int
    layer_source: str
    decode_layers: list[int]
    embeddings: dict[str, pd.DataFrame] = field(default_factory=dict)
    purity: dict[str, float] = field(default_factory=dict)


def default_decode_layers(num_layers: int, chosen: int) -> list[int]:
    """A quarter, half, the chosen layer and the last."""
    return sorted({num_layers // 4, num_layers // 2, chosen, num_layers - 1})


def analysis_tables(
    adapter: ModelAdapter,
    collected: list[SpecStates],
    curve_frames: list[pd.DataFrame],
    sets_frames: list[pd.DataFrame],
    specs: list[str],
    task_names: list[str],
    *,
    layer: int | None = None,
    run_layer: int | None = None,
    run_layer_source: str = LAYER_OF_RUN,
    decode_layers: list[int] | None = None,
    top_k: int = 5,
    embeddings: Sequence[str] = (),
    seed: int = 1,
) -> AnalysisTables:
    """The tables of the states ``collected`` per (task, spec), their phase curves and token sets.

    The decoding / similarity / embedding layer is ``layer``, else ``run_layer`` (the layer a
    ``taskvec run`` chose, or under per-task selection its mean curve's best: ``run_layer_source``
    says which), else the layer where task tokens peak in the phase curves."""
    tables: dict[str, pd.DataFrame] = {}
    curves = pd.concat(curve_frames, ignore_index=True)
    tables["phase_curves"] = curves
    mean_curves = curves.groupby(["spec", "layer"], sort=False)[list(MASS.values())].mean()
    ranges = pd.concat({spec: phase_ranges(mean_curves.loc[spec]) for spec in specs}, names=["spec"])
    tables["phase_ranges"] = ranges
    per_task_ranges = pd.concat(
        {
            (task, spec): phase_ranges(group.set_index("layer")[list(MASS.values())])
            for (task, spec), group in curves.groupby(["task", "spec"], sort=False)
        },
        names=["task", "spec"],
    )
    tables["phase_ranges_by_task"] = per_task_ranges
    tables["token_sets"] = pd.concat(sets_frames, ignore_index=True)

    if layer is not None:
        source = LAYER_GIVEN
    elif run_layer is not None:
        layer, source = adapter.check_layer(int(run_layer)), run_layer_source
    else:
        task_curve = curves.groupby("layer")[MASS["task"]].mean()
        layer, source = int(task_curve.idxmax()), LAYER_PEAK

    decode_layers = decode_layers or default_decode_layers(adapter.num_layers, layer)
    top1_frames = []
    for got in collected:
        frame = top1_decodings(adapter, got.states, decode_layers)
        frame.insert(0, "spec", got.spec)
        frame.insert(0, "task", got.task)
        top1_frames.append(frame)
    top1 = pd.concat(top1_frames, ignore_index=True)
    tables["top1"] = top1
    distribution = pd.concat(
        [
            top1_distribution(group).assign(task=task, spec=spec)
            for (task, spec), group in top1.groupby(["task", "spec"], sort=False)
        ],
        ignore_index=True,
    )[["task", "spec", "layer", "token", "count", "share"]]
    tables["top1_distribution"] = distribution

    vectors = {(got.task, got.spec): got.vector.vectors for got in collected}
    decodings = vector_decodings(adapter, vectors, layer, top_k)
    tables["decodings"] = decodings
    wide = decodings_table(decodings)
    wide = wide[[s for s in specs if s in wide.columns]].reindex(task_names)
    tables["decodings_table"] = wide

    matrix = cosine_matrix({key: v[layer] for key, v in vectors.items()})
    tables["similarity"] = matrix
    by_layer = similarity_by_layer(vectors)
    tables["similarity_by_layer"] = by_layer

    maps, purity = {}, {}
    points = {(got.task, got.spec): got.states[:, layer] for got in collected}
    if sum(p.shape[0] for p in points.values()) >= 3:
        for method in embeddings:
            frame = embedding_frame(points, method, seed=seed)
            maps[method] = frame
            purity[method] = cluster_purity(frame)
            tables[f"embedding_{method}"] = frame
    return AnalysisTables(tables, layer, source, decode_layers, maps, purity)

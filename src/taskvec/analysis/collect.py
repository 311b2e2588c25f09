"""The states every analysis reads, built with the protocol's own prompts and extraction.

For one (task, specification): the task vector exactly as ``taskvec run`` makes it (mean over the
validation prompts of ``UnitPrompts``, or the instruction alone), and the delimiter states of up
to ``prompts`` single prompts of that specification on the test split (demonstrations + query, or
instruction + query), which the per-prompt analyses (phases, top-1, embeddings) read.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from taskvec.errors import ConfigError
from taskvec.evaluation.protocol import SPECS, ExperimentConfig, UnitPrompts, task_vector_for
from taskvec.models.adapter import ModelAdapter
from taskvec.models.batching import OnProgress, progress_from
from taskvec.models.shared_work import SharedWork
from taskvec.prompts.template import PromptTemplate
from taskvec.tasks.images import DEFAULT_STYLE
from taskvec.tasks.task import Task
from taskvec.vectors.extract import last_token_states
from taskvec.vectors.task_vector import TaskVector

ANALYSIS_SPECS: tuple[str, ...] = tuple(s for s in SPECS if s != "ensemble")


@dataclass
class SpecStates:
    """One (task, specification): its task vector and per-prompt delimiter states."""

    task: str
    spec: str
    vector: TaskVector  # vectors: [layers, hidden]
    states: torch.Tensor  # [prompts, layers, hidden]


def default_specs(adapter: ModelAdapter) -> list[str]:
    """Every specification the model can read: image ICL only for models that take images."""
    return [s for s in ANALYSIS_SPECS if s != "image-icl" or adapter.supports_images]


def unit_config(
    adapter: ModelAdapter,
    task: Task,
    spec: str,
    template: PromptTemplate,
    style: str,
    n_examples: int,
    seed: int,
    memory_budget_mb: float | None,
) -> ExperimentConfig:
    """The protocol config whose prompts are this specification's own: image demonstrations
    come with image queries, text ones and instructions with text queries."""
    if spec not in ANALYSIS_SPECS:
        raise ConfigError(f"unknown specification {spec!r} for analysis; choose from {list(ANALYSIS_SPECS)}")
    if spec == "image-icl" and not adapter.supports_images:
        raise ConfigError(f"{adapter.name} is text-only; it cannot read image-ICL prompts")
    return ExperimentConfig.create(
        model=adapter.name,
        tasks=[task.name],
        spec=spec,
        query="image" if spec == "image-icl" else "text",
        style=style,
        template=template,
        n_examples=n_examples,
        seeds=[seed],
        memory_budget_mb=memory_budget_mb,
    )


def collect(
    adapter: ModelAdapter,
    task: Task,
    spec: str,
    template: PromptTemplate,
    *,
    style: str = DEFAULT_STYLE,
    n_examples: int = 5,
    seed: int = 1,
    prompts: int = 100,
    extraction_prompts: int | None = None,
    memory_budget_mb: float | None = None,
    shared: SharedWork | None = None,
    on_progress: OnProgress | None = None,
) -> SpecStates:
    """Task vector and per-prompt states of ``task`` specified by ``spec`` (see the module doc).

    ``extraction_prompts`` caps the validation prompts averaged into the vector (default: all, as
    the protocol does); ``prompts`` caps the per-prompt test-split states. ``shared`` lends the
    delimiter states of prompts a protocol run already ran (a reproduction's seed-1 vectors).
    ``on_progress(done, total)`` is told the prompts run (the vector's, then the test split's)."""
    config = unit_config(adapter, task, spec, template, style, n_examples, seed, memory_budget_mb)
    unit = UnitPrompts(task, config, seed)
    tested = unit.test_base[:prompts]
    first = len(unit.extraction[:extraction_prompts]) if spec != "instruction" else 1  # the vector's
    total = first + len(tested)
    if on_progress is not None:
        on_progress(0, total)
    told = progress_from(on_progress, 0, total)
    vector = task_vector_for(adapter, unit, shared, told, limit=extraction_prompts)
    states = last_token_states(
        adapter, tested, config.budget(adapter), on_progress=progress_from(on_progress, first, total)
    )
    return SpecStates(task.name, spec, vector, states)

"""Extraction: the residual stream at the delimiter, for all layers in one forward pass."""

from __future__ import annotations

from collections.abc import Sequence
from typing import get_args

import torch

from taskvec.errors import ConfigError
from taskvec.models.adapter import ModelAdapter, model_call
from taskvec.models.batching import MemoryBudget, OnProgress, check_prompt_list, plan_batches, token_counts
from taskvec.models.head import unread_head
from taskvec.models.shared_work import SharedWork, compute_or_share
from taskvec.patching.hooks import recording_last_token
from taskvec.prompts.inputs import Modality
from taskvec.prompts.template import Prompt, PromptTemplate
from taskvec.vectors.provenance import PromptSource
from taskvec.vectors.task_vector import TaskVector, VectorMeta


def last_token_states(
    adapter: ModelAdapter,
    prompts: Sequence[Prompt],
    budget: MemoryBudget | None = None,
    shared: SharedWork | None = None,
    on_progress: OnProgress | None = None,
) -> torch.Tensor:
    """Every decoder layer's output at each prompt's last token: ``[prompts, layers, hidden]``.

    With ``shared``, prompts whose states were computed before are not run again (the result is
    then shared: treat it as read-only). ``on_progress(done, total)`` is told the prompts run
    after each batch."""
    budget = budget or MemoryBudget.for_model(adapter)
    return compute_or_share(
        shared,
        "last-token states",
        adapter,
        prompts,
        budget,
        lambda: _run(adapter, prompts, budget, on_progress),
    )


@torch.no_grad()
def _run(
    adapter: ModelAdapter, prompts: Sequence[Prompt], budget: MemoryBudget, on_progress: OnProgress | None
) -> torch.Tensor:
    states = torch.empty(len(prompts), adapter.num_layers, adapter.hidden_size, device="cpu")
    lengths = token_counts(adapter, prompts)
    done = 0
    for indices in plan_batches(lengths, budget.max_tokens(adapter)):
        encoded = adapter.encode([prompts[i] for i in indices])
        with recording_last_token(adapter.layers) as records, unread_head(adapter.unembedding()):
            adapter.forward(encoded)
        device = records[0].device  # a model spread over devices records each layer on its own
        states[indices] = torch.stack([r.to(device) for r in records], dim=1).float().cpu()
        done += len(indices)
        if on_progress is not None:
            on_progress(done, len(prompts))
    return states


def _check_ends_at_delimiter(prompts: Sequence[Prompt], delimiter: str, spec: str) -> None:
    """A prompt ends at the template's delimiter: the vector is read at its last token, so a
    prompt that goes on (a trailing space, the answer itself) or an instruction that stops at its
    last word would give the state of another token, silently."""
    built = "end the instruction with it" if spec == "instruction" else "build prompts with template.icl"
    for index, prompt in enumerate(prompts):
        last = prompt if isinstance(prompt, str) else prompt[-1] if prompt else ""
        if not isinstance(last, str) or not last.endswith(delimiter):
            ending = "a picture" if not isinstance(last, str) else repr(last[-12:])
            raise ConfigError(
                f"prompt {index} ends with {ending}, not the template's delimiter {delimiter!r}: a task "
                f"vector is read at the delimiter before the answer ({built})"
            )


@model_call
def extract(
    adapter: ModelAdapter,
    prompts: Sequence[Prompt],
    *,
    task: str,
    spec: str,
    modality: str = "text",
    n_examples: int = 0,
    seed: int | None = None,
    template: str | PromptTemplate = "",
    budget: MemoryBudget | None = None,
    shared: SharedWork | None = None,
    sources: Sequence[PromptSource] | None = None,
    on_progress: OnProgress | None = None,
) -> TaskVector:
    """The task vector of ``prompts``: per-layer mean of the delimiter's residual state.

    Each prompt must end at the delimiter that precedes an answer (an ICL prompt ending "A:",
    or an instruction), which is how ``taskvec.prompts`` builds them. ``n_examples`` and
    ``template`` (a name, recorded as it is, or the ``PromptTemplate`` itself, whose fields are then
    recorded too and whose delimiter every ICL prompt is checked to end with) are what the prompts
    were built with: they go into ``vector.meta``, with ``sources`` (one
    ``PromptSource`` per prompt, in order: which items built it; ``vectors.provenance``).
    ``on_progress(done, total)`` is told the prompts run after each batch.
    """
    check_prompt_list(prompts)
    if not prompts:
        raise ConfigError("extract needs at least one prompt")
    if modality not in get_args(Modality):
        raise ConfigError(f"modality must be one of {get_args(Modality)} (of the examples), not {modality!r}")
    if n_examples < 0 or not task:
        raise ConfigError(
            f"extract needs a task name and n_examples >= 0, not task={task!r}, n_examples={n_examples}"
        )
    if sources is not None and len(sources) != len(prompts):
        raise ConfigError(
            f"extract got {len(sources)} sources for {len(prompts)} prompts; give one per prompt"
        )
    if isinstance(template, PromptTemplate):
        _check_ends_at_delimiter(prompts, template.delimiter, spec)
    states = last_token_states(adapter, prompts, budget, shared, on_progress)
    meta = VectorMeta(
        model=adapter.name,
        model_id=adapter.model_id,
        model_fingerprint=adapter.fingerprint,
        num_layers=adapter.num_layers,
        hidden_size=adapter.hidden_size,
        task=task,
        spec=spec,
        modality=modality,
        n_examples=n_examples,
        n_prompts=len(prompts),
        seed=seed,
        template=template.name if isinstance(template, PromptTemplate) else template,
        template_spec=template.model_dump(mode="json") if isinstance(template, PromptTemplate) else {},
        layers=list(range(adapter.num_layers)),
        sources=list(sources or []),
    )
    return TaskVector(states.mean(0), meta)

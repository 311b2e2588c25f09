"""The logit lens: read residual-stream states as next-token distributions, layer by layer.

Everything goes through ``ModelAdapter.final_norm`` and ``unembedding``, so the same code reads a
text LLM, an HF VLM or the embedded VLM. States come from ``taskvec.vectors.extract``
(``last_token_states``: ``[prompts, layers, hidden]``) or are task vectors (``[layers, hidden]``).
The vocabulary is large, so distributions are computed for a chunk of states at a time (many
states per pass over the unembedding's weight, a bounded block of logits) and reduced at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import pandas as pd
import torch

from taskvec.analysis.token_sets import PHASES, TokenSets
from taskvec.models.adapter import ModelAdapter
from taskvec.models.head import greedy_head

#: column of each phase's probability mass in the frames below ("task" alone would clash with the
#: column naming the task)
MASS: dict[str, str] = {phase: f"{phase}_mass" for phase in PHASES}

#: bytes of float32 logits held at once (states x vocabulary): Gemma 3's 262k tokens read 64
#: states per pass over the head's weight, a matmul instead of a weight-bound vector product
LENS_CHUNK_BYTES = 64 << 20


def _as_head_input(adapter: ModelAdapter, states: torch.Tensor) -> torch.Tensor:
    """States cast to the head's dtype and device, so float32 states read a bf16 model."""
    weight = next(adapter.unembedding().parameters())
    # an offloaded head's weights are on "meta" until accelerate's hook brings them in
    device = adapter.device if weight.device.type == "meta" else weight.device
    return states.to(device=device, dtype=weight.dtype)


@torch.no_grad()
def lens_logits(adapter: ModelAdapter, states: torch.Tensor) -> torch.Tensor:
    """Vocabulary logits of residual states ``[..., hidden]`` -> ``[..., vocab]`` (float32)."""
    return adapter.logit_lens(_as_head_input(adapter, states)).float().cpu()


@torch.no_grad()
def lens_top1(adapter: ModelAdapter, states: torch.Tensor) -> torch.Tensor:
    """The argmax of ``lens_logits`` for states ``[..., hidden]`` -> ``[...]``, without the logits:
    ``greedy_head`` finds the same token at bfloat16 speed."""
    with greedy_head(adapter.unembedding()) as reader:
        adapter.logit_lens(_as_head_input(adapter, states))
    return reader.last().cpu()


def lens_probs(adapter: ModelAdapter, states: torch.Tensor) -> torch.Tensor:
    """Softmax of ``lens_logits``: ``[..., vocab]``."""
    return lens_logits(adapter, states).softmax(-1)


def lens_chunks(adapter: ModelAdapter, states: torch.Tensor) -> Iterator[tuple[slice, torch.Tensor]]:
    """``lens_logits`` of states ``[rows, hidden]``, a chunk of rows at a time (at most
    ``LENS_CHUNK_BYTES`` of logits): ``(rows of the chunk, their logits [chunk, vocab])``."""
    size = max(1, LENS_CHUNK_BYTES // (4 * adapter.vocab_size))
    for start in range(0, len(states), size):
        rows = slice(start, min(start + size, len(states)))
        yield rows, lens_logits(adapter, states[rows])


def phase_masses(adapter: ModelAdapter, states: torch.Tensor, sets: TokenSets) -> pd.DataFrame:
    """Probability mass on each phase's tokens, per prompt and layer.

    ``states: [prompts, layers, hidden]`` -> rows (prompt, layer, input_mass, task_mass, answer_mass)."""
    prompts, layers = states.shape[:2]
    on = torch.device("cpu")  # where lens_logits hands its logits back
    index = {phase: torch.tensor(sets.ids[phase], dtype=torch.long, device=on) for phase in PHASES}
    masses = {phase: torch.zeros(prompts * layers, device=on) for phase in PHASES}
    for rows, logits in lens_chunks(adapter, states.reshape(prompts * layers, -1)):
        log_total = logits.logsumexp(-1, keepdim=True)
        for phase, ids in index.items():
            masses[phase][rows] = (logits[:, ids] - log_total).exp().sum(-1)
    frame = {
        "prompt": torch.arange(prompts, device=on).repeat_interleave(layers).tolist(),
        "layer": torch.arange(layers, device=on).repeat(prompts).tolist(),
        **{MASS[phase]: masses[phase].tolist() for phase in PHASES},
    }
    return pd.DataFrame(frame, columns=["prompt", "layer", *MASS.values()])


def phase_curve(masses: pd.DataFrame) -> pd.DataFrame:
    """Mean mass per layer (index) and phase (columns), over prompts."""
    return masses.groupby("layer")[list(MASS.values())].mean()


def phase_ranges(curve: pd.DataFrame, share: float = 0.5) -> pd.DataFrame:
    """Where each phase lives in a ``phase_curve``.

    ``peak_layer``/``peak_mass``: the layer of a phase's highest mass. Each curve is then divided
    by its own peak (task words are few tokens, so their raw mass is small) and a layer belongs to
    the phase with the highest relative mass, if that is at least ``share`` of its peak; layers
    where no phase reaches that belong to none. ``layers``: the phase's layers as ranges
    ("2, 20-22"); ``from``/``to``: the first and last of them."""
    columns = [MASS[p] for p in PHASES]
    peaks = curve[columns].max()
    relative = curve[columns] / peaks.where(peaks > 0)
    owner = relative.idxmax(axis=1).where(relative.max(axis=1) >= share)
    rows = []
    for phase in PHASES:
        layers = [int(x) for x in owner.index[owner == MASS[phase]]]
        rows.append(
            {
                "phase": phase,
                "peak_layer": int(curve[MASS[phase]].idxmax()),
                "peak_mass": round(float(peaks[MASS[phase]]), 4),
                "layers": layer_ranges(layers),
                "from": min(layers) if layers else None,
                "to": max(layers) if layers else None,
            }
        )
    return pd.DataFrame(rows).astype({"from": "Int64", "to": "Int64"}).set_index("phase")


def layer_ranges(layers: Sequence[int]) -> str:
    """``[2, 20, 21, 22]`` -> ``"2, 20-22"``."""
    runs: list[list[int]] = []
    for layer in sorted(layers):
        if runs and layer == runs[-1][-1] + 1:
            runs[-1].append(layer)
        else:
            runs.append([layer])
    return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)


def top1_decodings(adapter: ModelAdapter, states: torch.Tensor, layers: Sequence[int]) -> pd.DataFrame:
    """The top-1 logit-lens token of every prompt at each of ``layers``.

    ``states: [prompts, layers, hidden]`` -> rows (prompt, layer, token_id, token)."""
    rows = []
    for layer in layers:
        adapter.check_layer(layer)
        best = lens_top1(adapter, states[:, layer])  # [prompts]
        for prompt, token_id in enumerate(best.tolist()):
            token = adapter.decode([token_id])
            rows.append({"prompt": prompt, "layer": layer, "token_id": token_id, "token": token})
    return pd.DataFrame(rows, columns=["prompt", "layer", "token_id", "token"])


def top1_distribution(top1: pd.DataFrame, keep: int = 10) -> pd.DataFrame:
    """Share of prompts per top-1 token and layer (the ``keep`` most frequent, the rest as 'other')."""
    frames = []
    for layer, group in top1.groupby("layer"):
        counts = group["token"].value_counts()
        shown = counts.iloc[:keep]
        rest = int(counts.iloc[keep:].sum())
        frame = pd.DataFrame({"token": shown.index, "count": shown.values})
        if rest:
            frame = pd.concat([frame, pd.DataFrame({"token": ["(other)"], "count": [rest]})])
        frame["share"] = frame["count"] / len(group)
        frame.insert(0, "layer", layer)
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=["layer", "token", "count", "share"])
    return pd.concat(frames, ignore_index=True)


def decode_vector(adapter: ModelAdapter, vector: torch.Tensor, k: int = 5) -> pd.DataFrame:
    """Top-``k`` tokens of one residual vector ``[hidden]``: rank, token_id, token, prob."""
    return _decode_rows(adapter, vector[None], k)[0]


def _decode_rows(adapter: ModelAdapter, states: torch.Tensor, k: int) -> list[pd.DataFrame]:
    """``decode_vector`` of each row of ``states [rows, hidden]``, the rows read in chunks."""
    frames = []
    for _, logits in lens_chunks(adapter, states):
        top = logits.softmax(-1).topk(k)
        for values, indices in zip(top.values, top.indices, strict=True):
            frames.append(
                pd.DataFrame(
                    {
                        "rank": range(1, k + 1),
                        "token_id": indices.tolist(),
                        "token": adapter.decode_each(indices),
                        "prob": values.tolist(),
                    }
                )
            )
    return frames


def vector_decodings(
    adapter: ModelAdapter, vectors: Mapping[tuple[str, str], torch.Tensor], layer: int, k: int = 5
) -> pd.DataFrame:
    """Top-``k`` decodings of task vectors ``{(task, spec): [layers, hidden]}`` at ``layer`` (Table 2).

    Long format: task, spec, layer, rank, token_id, token, prob."""
    adapter.check_layer(layer)
    frames = []
    decoded = _decode_rows(adapter, torch.stack([vector[layer] for vector in vectors.values()]), k)
    for (task, spec), frame in zip(vectors, decoded, strict=True):
        frame.insert(0, "layer", layer)
        frame.insert(0, "spec", spec)
        frame.insert(0, "task", task)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def decodings_table(decodings: pd.DataFrame) -> pd.DataFrame:
    """Tasks as rows, specifications as columns, each cell the top-k tokens in order."""
    shown = decodings.sort_values("rank")
    shown = shown.assign(token=[_token_cell(t, i) for t, i in zip(shown.token, shown.token_id, strict=True)])
    joined = shown.groupby(["task", "spec"], sort=False)["token"].agg(", ".join)
    return joined.unstack("spec")


def _token_cell(token: str, token_id: int) -> str:
    """A token as a table shows it: quoted, or, where it decodes to part of a character (a byte
    of a multi-byte letter, shown alone as '\ufffd'), its id, so it is not read as a real '\ufffd'."""
    if "\ufffd" in token:
        return f"token {int(token_id)} (part of a character)"
    return repr(token)

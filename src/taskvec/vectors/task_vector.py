"""``TaskVector``: per-layer mean residual states at the delimiter, with where they came from.

Saved as safetensors (the tensor) plus the same metadata inside the file and in a JSON sidecar
that people can read. Loading checks the file (shape, checksum) and, given a model, that the vector
fits it; a vector is only ever used where its width and depth match.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict, ValidationError
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from taskvec.errors import VectorFileError, VectorMismatchError, storage_error
from taskvec.models.adapter import ModelAdapter
from taskvec.vectors.provenance import PromptSource


class VectorMeta(BaseModel):
    """Provenance of a task vector: enough to refuse using it where it does not belong."""

    model_config = ConfigDict(frozen=True)

    model: str
    model_fingerprint: str
    num_layers: int
    hidden_size: int
    task: str
    spec: str  # "text-icl", "image-icl", "instruction", "ensemble", ...
    modality: str  # "text" or "image" (of the examples' inputs)
    n_examples: int  # demonstrations per prompt (0 for instructions)
    n_prompts: int  # prompts averaged
    seed: int | None
    template: str
    layers: list[int]
    model_id: str = ""  # where the weights came from (hub id, folder or package file)
    template_spec: dict = {}  # the template's fields, so a renamed or edited template is told apart
    run_identity: str = ""  # the run that computed it (config + task data + weights); keys the cache
    #: what each averaged prompt was built from, in order (``vectors.provenance``); empty where
    #: the caller did not say (``extract`` without ``sources``, vectors saved before it was kept)
    sources: list[PromptSource] = []

    def recorded(self) -> dict:
        """The metadata as saved (and checksummed). No ``sources`` key where there are none, so a
        vector saved before sources were recorded keeps its checksum and sidecar."""
        info = self.model_dump(mode="json")
        if not info["sources"]:
            del info["sources"]
        return info


@dataclass(eq=False)
class TaskVector:
    """``vectors[i]`` is the mean output of decoder layer ``meta.layers[i]`` at the delimiter."""

    vectors: torch.Tensor  # [layers, hidden]
    meta: VectorMeta

    def __eq__(self, other: object) -> bool:
        """The same provenance and the same values, dtype and device (the dataclass's own ``==``
        compared the tensors elementwise and raised on the ambiguous result)."""
        if not isinstance(other, TaskVector):
            return NotImplemented
        return (
            self.meta == other.meta
            and self.vectors.dtype == other.vectors.dtype
            and self.vectors.device == other.vectors.device
            and torch.equal(self.vectors, other.vectors)
        )

    __hash__ = None  # mutable tensors: not a dict key

    def to(self, *args, **kwargs) -> TaskVector:
        """The vector on another device or in another dtype (``torch.Tensor.to``'s arguments),
        with the same provenance."""
        return TaskVector(self.vectors.to(*args, **kwargs), self.meta)

    def at(self, layer: int) -> torch.Tensor:
        """The vector of one decoder layer: ``[hidden]``."""
        try:
            return self.vectors[self.meta.layers.index(layer)]
        except ValueError:
            raise VectorMismatchError(
                f"task vector for {self.meta.task!r} has no layer {layer} (it has {self.meta.layers})"
            ) from None

    def checksum(self) -> str:
        """SHA-256 of the values and the provenance: an edited tensor or edited metadata shows."""
        digest = hashlib.sha256(self.vectors.detach().float().cpu().contiguous().numpy().tobytes())
        digest.update(json.dumps(self.meta.recorded(), sort_keys=True).encode())
        return digest.hexdigest()[:16]

    def check_fits(self, adapter: ModelAdapter, same_model: bool = False) -> None:
        """Refuse a vector of another width or depth; with ``same_model``, also of other weights.

        Without ``same_model`` a vector may move between models of one architecture (the paper's
        LLM -> VLM transfer), so only the shape of the residual stream is compared."""
        if self.meta.hidden_size != adapter.hidden_size:
            raise VectorMismatchError(
                f"task vector from {self.meta.model} is {self.meta.hidden_size} wide but "
                f"{adapter.name} has a {adapter.hidden_size}-wide residual stream; extract the vector "
                f"from {adapter.name} (or a model of the same width)"
            )
        if (
            self.meta.num_layers != adapter.num_layers
            or max(self.meta.layers, default=0) >= adapter.num_layers
        ):
            layers = self.meta.layers
            span = f"{min(layers)}..{max(layers)}" if layers else "none"
            raise VectorMismatchError(
                f"task vector from {self.meta.model} holds layers {span} of a {self.meta.num_layers}-layer "
                f"model, but {adapter.name} has {adapter.num_layers} decoder layers; extract it from "
                f"{adapter.name}"
            )
        if same_model and self.meta.model_fingerprint != adapter.fingerprint:
            # one name, two fingerprints: other weights, or the same weights fingerprinted two ways
            how = (
                ": other weights (changed since the vector was extracted: a training step, "
                "load_state_dict), or the same weights fingerprinted two ways (a model loaded by name "
                "or folder is fingerprinted by its files, one wrapped from memory by its weights: "
                "load both ways alike to compare them)"
                if self.meta.model == adapter.name
                else ""
            )
            raise VectorMismatchError(
                f"task vector was extracted from {self.meta.model} "
                f"({self.meta.model_fingerprint}), not from {adapter.name} ({adapter.fingerprint}){how}"
            )

    @staticmethod
    def mean(vectors: list[TaskVector], spec: str) -> TaskVector:
        """Average vectors of the same model and layers (e.g. instruction + exemplars). The mean
        records what it is made of: every task (``a+b`` where they differ), the seed they share
        (else None), the most examples behind any of its prompts, and every prompt's source."""
        if not vectors:
            raise VectorMismatchError("no task vectors to average")
        first = vectors[0]
        for other in vectors[1:]:
            if other.meta.layers != first.meta.layers or other.meta.hidden_size != first.meta.hidden_size:
                raise VectorMismatchError("can only average task vectors over the same layers and width")
            if other.meta.model_fingerprint != first.meta.model_fingerprint:
                one, two = first.meta, other.meta
                raise VectorMismatchError(
                    f"can only average task vectors of one model: {one.model} ({one.model_fingerprint}) "
                    f"and {two.model} ({two.model_fingerprint}); a mean of two models' states would be "
                    "recorded as one model's"
                )
        stacked = torch.stack([v.vectors for v in vectors]).mean(0)
        seeds = {v.meta.seed for v in vectors}
        meta = first.meta.model_copy(
            update={
                "spec": spec,
                "task": "+".join(dict.fromkeys(v.meta.task for v in vectors)),
                "seed": first.meta.seed if len(seeds) == 1 else None,
                "n_examples": max(v.meta.n_examples for v in vectors),
                "n_prompts": sum(v.meta.n_prompts for v in vectors),
                "sources": [source for v in vectors for source in v.meta.sources],
            }
        )
        return TaskVector(stacked, meta)

    def __repr__(self) -> str:
        meta = self.meta
        layers, hidden = len(meta.layers), meta.hidden_size
        seed = "" if meta.seed is None else f", seed={meta.seed}"
        return (
            f"TaskVector(task={meta.task!r}, spec={meta.spec!r}, model={meta.model!r}, "
            f"{layers} layers x {hidden}{seed})"
        )

    # --- files -----------------------------------------------------------------------------
    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write ``<path>.safetensors`` and ``<path>.json`` (each via a temporary file and a rename).

        The name is kept as given (``save("capital.v1")`` writes ``capital.v1.safetensors``; a
        trailing ``.safetensors`` or ``.json`` is not doubled). A file there that holds another
        vector is refused unless ``overwrite``; the same vector again is a no-op rewrite."""
        path = vector_file(path)
        info = {**self.meta.recorded(), "checksum": self.checksum()}
        if path.exists() and not overwrite and _saved_checksum(path) != info["checksum"]:
            raise VectorFileError(
                f"{path} already holds another task vector; pass overwrite=True to replace it, "
                "or save under another name"
            )
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        sidecar = _sidecar(path)
        tmp_json = sidecar.with_name(f".{sidecar.name}.{os.getpid()}.tmp")
        writing = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # bytes written by ``open``: the file gets the umask's mode (save_file's is 0600)
            tensors = {"vectors": self.vectors.detach().cpu().contiguous()}
            tmp.write_bytes(save(tensors, metadata={"taskvec": json.dumps(info)}))
            os.replace(tmp, path)
            writing = sidecar
            tmp_json.write_text(json.dumps(info, indent=2))
            os.replace(tmp_json, sidecar)
        except BaseException as error:  # a full disk, a read-only folder, Ctrl-C, SIGTERM: no temp file
            tmp.unlink(missing_ok=True)
            tmp_json.unlink(missing_ok=True)
            if isinstance(error, OSError):  # one clear error, naming the file it was writing
                raise storage_error(error, writing) from None
            raise
        return path

    @classmethod
    def load(
        cls, path: str | Path, model: ModelAdapter | None = None, same_model: bool = False
    ) -> TaskVector:
        """Read a saved vector, refusing a missing, corrupt or edited file; given ``model``, also one
        that does not fit it (``check_fits``)."""
        path = vector_file(path)
        if not path.is_file():
            raise VectorFileError(f"no task vector file at {path}; save one with TaskVector.save")
        try:
            with safe_open(str(path), "pt") as handle:
                info = json.loads((handle.metadata() or {})["taskvec"])
                vectors = handle.get_tensor("vectors")
            checksum = info.pop("checksum")
            meta = VectorMeta.model_validate(info)
        except (
            SafetensorError,
            OSError,
            KeyError,
            TypeError,
            json.JSONDecodeError,
            ValidationError,
        ) as error:
            raise VectorFileError(
                f"{path} is not a readable taskvec vector ({type(error).__name__}: {error}); re-extract it"
            ) from None
        if tuple(vectors.shape) != (len(meta.layers), meta.hidden_size):
            raise VectorFileError(
                f"{path}: tensor of shape {tuple(vectors.shape)} does not match its metadata "
                f"({len(meta.layers)} layers x {meta.hidden_size}); re-extract it"
            )
        vector = cls(vectors, meta)
        if vector.checksum() != checksum:
            raise VectorFileError(f"{path}: checksum mismatch, the file is corrupt or edited; re-extract it")
        _check_sidecar(path, {**info, "checksum": checksum})
        if model is not None:
            vector.check_fits(model, same_model=same_model)
        return vector


def _check_sidecar(path: Path, info: dict) -> None:
    """The JSON sidecar people read must say what the safetensors file holds: one that disagrees
    (edited, or left from another vector) is refused rather than trusted by a reader. A vector
    saved without one (or whose sidecar was deleted) loads."""
    sidecar = _sidecar(path)
    if not sidecar.is_file():
        return
    try:
        told = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise VectorFileError(f"{sidecar} is not readable JSON ({error}); delete it or re-extract") from None
    if not isinstance(told, dict):
        raise VectorFileError(f"{sidecar} is not a JSON object; delete it or re-extract the vector")
    differ = sorted(key for key in {*told, *info} if told.get(key) != info.get(key))
    if differ:
        key = differ[0]
        raise VectorFileError(
            f"{sidecar} disagrees with {path.name} on {', '.join(differ)} (e.g. {key}: "
            f"{told.get(key)!r} != {info.get(key)!r}); delete the sidecar or re-extract the vector"
        )


def vector_file(path: str | Path) -> Path:
    """The ``.safetensors`` file of a vector saved as ``path``: the name as given, with the suffix
    added (``capital.v1`` -> ``capital.v1.safetensors``), never replacing a dotted part of it."""
    path = Path(path)
    if path.suffix in (".safetensors", ".json"):
        path = path.with_suffix("")
    return path.with_name(path.name + ".safetensors")


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name.removesuffix(".safetensors") + ".json")


def _saved_checksum(path: Path) -> str | None:
    """The checksum recorded in a saved vector file (None where it cannot be read)."""
    try:
        with safe_open(str(path), "pt") as handle:
            return json.loads((handle.metadata() or {})["taskvec"]).get("checksum")
    except (SafetensorError, OSError, KeyError, TypeError, ValueError):
        return None

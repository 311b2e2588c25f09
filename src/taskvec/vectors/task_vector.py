"""``TaskVector``: per-layer mean residual states at the delimiter, with where they came from.

Saved as safetensors (the tensor) plus the same metadata inside the file and in a JSON sidecar
that people can read; loading checks the checksum, and using a vector checks the model.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict
from safetensors.torch import load_file, save_file

from taskvec.errors import VectorMismatchError
from taskvec.models.adapter import ModelAdapter


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


@dataclass
class TaskVector:
    """``vectors[i]`` is the mean output of decoder layer ``meta.layers[i]`` at the delimiter."""

    vectors: torch.Tensor  # [layers, hidden]
    meta: VectorMeta

    def at(self, layer: int) -> torch.Tensor:
        """The vector of one decoder layer: ``[hidden]``."""
        try:
            return self.vectors[self.meta.layers.index(layer)]
        except ValueError:
            raise VectorMismatchError(
                f"task vector for {self.meta.task!r} has no layer {layer} (it has {self.meta.layers})"
            ) from None

    def checksum(self) -> str:
        return hashlib.sha256(self.vectors.contiguous().numpy().tobytes()).hexdigest()[:16]

    def check_fits(self, adapter: ModelAdapter, same_model: bool = False) -> None:
        """Refuse a vector of another width; with ``same_model``, also of other weights."""
        if self.meta.hidden_size != adapter.hidden_size:
            raise VectorMismatchError(
                f"task vector from {self.meta.model} is {self.meta.hidden_size} wide but "
                f"{adapter.name} has a {adapter.hidden_size}-wide residual stream"
            )
        if same_model and self.meta.model_fingerprint != adapter.fingerprint:
            raise VectorMismatchError(
                f"task vector was extracted from {self.meta.model} "
                f"({self.meta.model_fingerprint}), not from {adapter.name} ({adapter.fingerprint})"
            )

    @staticmethod
    def mean(vectors: list[TaskVector], spec: str) -> TaskVector:
        """Average vectors of the same model and layers (e.g. instruction + exemplars)."""
        first = vectors[0]
        for other in vectors[1:]:
            if other.meta.layers != first.meta.layers or other.meta.hidden_size != first.meta.hidden_size:
                raise VectorMismatchError("can only average task vectors over the same layers and width")
        stacked = torch.stack([v.vectors for v in vectors]).mean(0)
        meta = first.meta.model_copy(
            update={"spec": spec, "n_prompts": sum(v.meta.n_prompts for v in vectors)}
        )
        return TaskVector(stacked, meta)

    # --- files -----------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write ``<path>.safetensors`` and ``<path>.json`` (each atomically)."""
        path = Path(path).with_suffix(".safetensors")
        path.parent.mkdir(parents=True, exist_ok=True)
        info = {**self.meta.model_dump(), "checksum": self.checksum()}
        tmp = path.with_name(f".{path.name}.tmp")
        save_file({"vectors": self.vectors.contiguous()}, str(tmp), metadata={"taskvec": json.dumps(info)})
        os.replace(tmp, path)
        sidecar = path.with_suffix(".json")
        tmp_json = sidecar.with_name(f".{sidecar.name}.tmp")
        tmp_json.write_text(json.dumps(info, indent=2))
        os.replace(tmp_json, sidecar)
        return path

    @classmethod
    def load(cls, path: str | Path) -> TaskVector:
        path = Path(path).with_suffix(".safetensors")
        if not path.is_file():
            raise FileNotFoundError(f"no task vector file at {path}")
        from safetensors import safe_open

        with safe_open(str(path), "pt") as handle:
            info = json.loads(handle.metadata()["taskvec"])
        vectors = load_file(str(path))["vectors"]
        checksum = info.pop("checksum")
        vector = cls(vectors, VectorMeta.model_validate(info))
        if vector.checksum() != checksum:
            raise VectorMismatchError(f"{path}: checksum mismatch, the file is corrupt")
        return vector

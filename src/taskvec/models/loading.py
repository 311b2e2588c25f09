"""How weights are loaded: options (dtype, placement, 4-bit), the cache of what taskvec can
recompute, weight fingerprints and the package folders that hold shipped weights.

Below the families, ``models.gguf``, the embedded VLM and ``models.registry``, which all load
through it.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from taskvec.errors import DeviceError, ModelSpecError
from taskvec.models.adapter import ModelAdapter, file_fingerprint
from taskvec.storage.run_folder import write_atomic

#: the placements accelerate computes for ``device_map`` (besides a plain device)
DEVICE_MAP_PLACEMENTS = ("auto", "balanced", "balanced_low_0", "sequential")


def check_device_present(device: torch.device, given: str) -> None:
    """``device`` (typed as ``given``, in ``--device`` or ``--device-map``) is one this machine has:
    one clear line before anything loads, not torch's assertion once the weights are read."""
    if device.type == "cuda":
        if not torch.cuda.is_available():
            cuda = torch.version.cuda
            build = "a CPU-only build" if cuda is None else f"built for CUDA {cuda}"
            raise DeviceError(
                f"device {given!r} needs CUDA, but this torch {torch.__version__} ({build}) "
                "sees no GPU; install a CUDA build of torch or use --device cpu"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(
                f"device {given!r}: this machine has {torch.cuda.device_count()} GPU(s), "
                f"cuda:0..cuda:{torch.cuda.device_count() - 1}"
            )
    elif device.type != "cpu":
        raise DeviceError(f"unsupported device {given!r}: use cpu, cuda or cuda:N")


@dataclass(frozen=True)
class LoadOptions:
    """How to load weights, passed to transformers' ``from_pretrained``.

    ``dtype``: a torch dtype name ("float32", "bfloat16", "float16"). ``device``: where the whole
    model computes ("cpu", "cuda", "cuda:1"; plain "cuda" under a launcher is the rank's
    ``cuda:$LOCAL_RANK``); weights load straight onto it. ``device_map``:
    accelerate's placement instead ("auto" spreads the layers over the GPUs and CPU); needs
    ``accelerate``. ``load_in_4bit``: NF4 weights via bitsandbytes (installed separately, needs a
    GPU), computing in ``dtype``. Hooks see the decoder layers' outputs in the compute dtype.
    """

    dtype: str = "float32"
    device_map: str | None = None
    load_in_4bit: bool = False
    cache_dir: Path | None = None
    device: str | None = None

    def __post_init__(self) -> None:
        self.torch_dtype()  # an unknown or non-floating dtype fails here, before anything loads
        self._check_device_map()

    def _check_device_map(self) -> None:
        """A device map is one of accelerate's placements or a device; anything else fails here,
        in one line, not deep in transformers after the config is read."""
        if self.device_map is None or self.device_map in DEVICE_MAP_PLACEMENTS:
            return
        try:
            device = torch.device(self.device_map)
        except (RuntimeError, TypeError):
            raise DeviceError(
                f"unknown device map {self.device_map!r}: use one of {', '.join(DEVICE_MAP_PLACEMENTS)}, "
                "or a device (cpu, cuda:N)"
            ) from None
        check_device_present(device, self.device_map)

    def numerics(self) -> str:
        """'' for the default (float32 on the CPU); otherwise what changes the numbers: the dtype,
        4-bit weights, the device (its kind: every GPU of a kind computes alike), the device map.
        It is appended to the weights fingerprint, so results computed under other numerics never
        mix in one run folder or vector check."""
        parts = [] if self.dtype == "float32" else [self.dtype]
        if self.load_in_4bit:
            parts.append("nf4")
        device = self.torch_device()
        if device is not None and device.type != "cpu":
            parts.append(device.type)
        if self.device_map and self.device_map != "cpu":
            parts.append(f"device_map={self.device_map}")
        return "+".join(parts)

    def torch_device(self) -> torch.device | None:
        """``device`` checked against this machine: one clear error before anything loads."""
        if self.device is None:
            return None
        try:
            device = torch.device(self.device)
        except (RuntimeError, TypeError) as error:
            raise DeviceError(f"unknown device {self.device!r}: use cpu, cuda or cuda:N") from error
        if device.type == "cuda" and device.index is None and "LOCAL_RANK" in os.environ:
            # under a launcher (torchrun, accelerate launch) each rank takes its own GPU
            device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        check_device_present(device, self.device)
        if self.device_map is not None and device.type != "cpu":
            raise DeviceError("give --device or --device-map, not both")
        return device

    def torch_dtype(self) -> torch.dtype:
        dtype = getattr(torch, self.dtype, None)
        if not isinstance(dtype, torch.dtype):
            raise ModelSpecError(f"unknown dtype {self.dtype!r}: use e.g. float32, bfloat16, float16")
        if not dtype.is_floating_point:
            raise ModelSpecError(
                f"dtype {self.dtype!r} is not a floating dtype; weights load in one, e.g. float32, "
                "bfloat16, float16"
            )
        return dtype

    def hf_kwargs(self) -> dict:
        kwargs: dict = {"dtype": self.torch_dtype()}
        device = self.torch_device()
        if self.device_map:
            kwargs["device_map"] = self.device_map
        elif device is not None and device.type != "cpu":
            kwargs["device_map"] = str(device)  # straight onto the GPU, never a CPU copy first
        if self.load_in_4bit:
            if importlib.util.find_spec("bitsandbytes") is None:
                raise ModelSpecError("load_in_4bit needs bitsandbytes: pip install bitsandbytes")
            from transformers import BitsAndBytesConfig

            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True, bnb_4bit_compute_dtype=self.torch_dtype()
            )
        return kwargs


def package_dir(module: str, install_hint: str) -> Path:
    """Folder of an installed package, found without importing it (some import heavy deps)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelSpecError(f"the weights package {module!r} is not installed: {install_hint}")
    return Path(next(iter(spec.submodule_search_locations)))


def cache_root(options: LoadOptions | None = None) -> Path:
    """Where taskvec keeps what it can recompute (dequantized weights, fingerprints, features)."""
    if options is not None and options.cache_dir is not None:
        return Path(options.cache_dir)
    # an empty TASKVEC_CACHE (``export TASKVEC_CACHE=$UNSET/...`` gone wrong) is unset: read as
    # a path, it put gigabytes of weights into the working folder
    return Path(os.environ.get("TASKVEC_CACHE", "").strip() or Path.home() / ".cache" / "taskvec")


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")


def weights_fingerprint(model_id: str, options: LoadOptions) -> str:
    """What identifies the weights of a hub id or local folder (it enters run identities and
    vector metadata): the hub commit its files are read from, or a hash of the folder's weight
    files. A file's hash is cached under its path, size and mtime, so a large folder is read
    once, not at every load. Known without loading the weights (a finished run is read back
    before they load)."""
    folder = Path(model_id).expanduser()
    if not folder.is_dir():
        return _hub_commit(model_id)
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES)):
        digest.update(f"{path.name}:{cached_file_fingerprint(path, options)};".encode())
    return digest.hexdigest()[:16]


def _hub_commit(model_id: str) -> str:
    """The commit of the hub repository ``from_pretrained`` reads ``model_id``'s files from,
    resolved as it resolves them (the local cache when offline): the folder of a cached file is
    ``snapshots/<commit>``. "" where no commit can be told."""
    from transformers.utils import cached_file

    config = Path(cached_file(model_id, "config.json"))
    return config.parent.name if config.parent.parent.name == "snapshots" else ""


def cached_file_fingerprint(path: Path, options: LoadOptions) -> str:
    """``file_fingerprint`` of ``path``, kept under its path, size and mtime in the taskvec cache
    (and for this process): a weights file is read once, not at every load."""
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:32]
    if key in _HASHED:
        return _HASHED[key]
    memo = cache_root(options) / "fingerprints" / key
    try:
        remembered = memo.read_text().strip()
    except (OSError, UnicodeDecodeError):
        remembered = ""
    if re.fullmatch(r"[0-9a-f]{16}", remembered):  # an empty or damaged memo is hashed again
        return remembered
    value = _HASHED[key] = file_fingerprint(path)
    # whole or not at all (a full cache left an empty memo, trusted from then on); a read-only or
    # full cache only costs the hash in the next process
    with contextlib.suppress(OSError):  # StorageError is one
        write_atomic(memo, value)
    return value


#: the files this process hashed (a run fingerprints a folder before its weights load, and its
#: loader again): a read-only cache still hashes a 14 GB folder once per command
_HASHED: dict[str, str] = {}


class WrapsLoadedModel(Protocol):
    """An adapter class that wraps a model already in memory: called with the model and its
    tokenizer (a text model) or processor (a VLM), as ``CausalLMAdapter`` and
    ``VisionLanguageAdapter`` are; ``ModelAdapter`` itself takes no tokenizer."""

    supports_images: bool

    def __call__(
        self, model: Any, tokenizer_or_processor: Any, /, *, name: str, model_id: str, fingerprint: str = ""
    ) -> ModelAdapter: ...


@dataclass(frozen=True)
class Family:
    """What a family module declares for each HF ``model_type`` it serves (its ``MODEL_TYPES``):
    ``load`` builds an adapter from a hub id or local folder; ``adapter_class`` wraps a model
    already in memory (``load_model(hf_model, tokenizer)``) and says whether it reads images."""

    load: Callable[[str, LoadOptions], ModelAdapter]
    adapter_class: WrapsLoadedModel


def with_numerics(adapter: ModelAdapter, options: LoadOptions) -> ModelAdapter:
    """``adapter`` marked with the numerics of ``options`` (nothing for the default float32 CPU)."""
    if options.numerics():
        adapter.mark_numerics(options.numerics())
    return adapter

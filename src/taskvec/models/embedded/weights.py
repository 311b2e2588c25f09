"""The trained parts of the embedded VLM: small safetensors files shipped with the package.

Each file has a JSON sidecar with the training configuration, its hash, the command that
reproduces it, the measured metrics and the SHA-256 of the tensor file. Loading checks the
checksum, so a file that does not belong to its recorded configuration is refused.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save

from taskvec.errors import ModelSpecError
from taskvec.models.adapter import file_sha256
from taskvec.storage.run_folder import write_atomic

WEIGHTS_DIR = Path(__file__).parent / "weights"


def config_hash(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


#: the sidecar fields loading builds the model from or checks against, beside ``config``: a hash
#: of them (``fields_hash``) is recorded and checked as ``config_hash`` is for ``config``, so an
#: edited field (two ``entity_ids`` swapped: a flag then answers another country) is refused,
#: not loaded under the same fingerprint (which covers the tensor file only)
LOADED_FIELDS = ("entity_ids", "projector_config", "backbone", "llm", "llm_fingerprint", "recogniser_sha256")


def fields_hash(info: dict) -> str:
    """The hash of ``info``'s ``LOADED_FIELDS`` (a field removed changes it too)."""
    return config_hash({key: info[key] for key in LOADED_FIELDS if key in info})


def save_weights(path: Path, tensors: dict[str, torch.Tensor], info: dict, dtype=torch.float16) -> Path:
    """Write ``path`` (.safetensors) and its ``.json`` sidecar atomically; floats stored as
    ``dtype`` (half precision keeps the shipped files at a few MB)."""
    path = Path(path).with_suffix(".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    stored = {
        name: (t.detach().to(dtype) if t.is_floating_point() else t.detach()).contiguous()
        for name, t in tensors.items()
    }
    write_atomic(path, save(stored))  # the mode a plain write gives (safetensors' own file was 0600)
    sidecar = {
        **info,
        "config_hash": config_hash(info["config"]),
        "fields_hash": fields_hash(info),
        "sha256": file_sha256(path),
    }
    write_atomic(path.with_suffix(".json"), json.dumps(sidecar, indent=1, ensure_ascii=False) + "\n")
    return path


def sidecar_of(path: Path) -> dict:
    """The sidecar of a weights file (what it records: config, metrics, the file's SHA-256);
    refuses a missing file or sidecar and one that is not JSON, as loading them would."""
    path = Path(path).with_suffix(".safetensors")
    sidecar = path.with_suffix(".json")
    if not path.is_file() or not sidecar.is_file():
        raise ModelSpecError(
            f"embedded VLM weights missing: {path} (+ .json); train them with `taskvec align`"
        )
    try:
        info = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelSpecError(
            f"{sidecar} is damaged ({error}); train the weights again with `taskvec align`"
        ) from None
    if not isinstance(info, dict) or not isinstance(info.get("config"), dict):
        raise ModelSpecError(
            f"{sidecar} is damaged (not a weights record with its config); train the weights again "
            "with `taskvec align`"
        )
    return info


def load_weights(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Tensors (as float32) and their sidecar; refuses missing or mismatching files."""
    path = Path(path).with_suffix(".safetensors")
    info, sidecar = sidecar_of(path), path.with_suffix(".json")
    if file_sha256(path) != info.get("sha256"):
        raise ModelSpecError(f"{path}: checksum does not match {sidecar.name}; the file is corrupt or stale")
    if config_hash(info["config"]) != info.get("config_hash"):
        raise ModelSpecError(f"{sidecar}: the recorded config does not match its hash")
    # sidecars written before fields_hash existed have none: they load as they did
    if "fields_hash" in info and fields_hash(info) != info["fields_hash"]:
        named = ", ".join(key for key in LOADED_FIELDS if key in info)
        raise ModelSpecError(
            f"{sidecar}: its recorded {named} do not match their hash (the file was edited); "
            "train the weights again with `taskvec align`"
        )
    tensors = {k: (v.float() if v.is_floating_point() else v) for k, v in load_file(str(path)).items()}
    return tensors, info

"""One self-describing folder per run; a crash never leaves a result that looks whole.

Every file is written to a temporary name and renamed into place. ``status.json`` says
``running`` until the very last write, which flips it to ``complete``; finished (task, seed)
units live in ``units/`` and are reused when the same configuration is run again, or a wider one
of the same *lineage* (the same settings with more seeds). Each unit carries the identity
(config + task data + weights) it was computed under, and one that does not match, or does not
parse, is recomputed rather than trusted.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from taskvec.errors import ConfigError

RUNNING, COMPLETE = "running", "complete"


def write_atomic(path: Path, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data.encode() if isinstance(data, str) else data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: Path, value) -> Path:
    return write_atomic(path, json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")


class RunFolder:
    """``root/`` with config.json, status.json, units/, vectors/, tables/, plots/, report.md."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    # --- layout ----------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.root / "config.json"

    @property
    def status_path(self) -> Path:
        return self.root / "status.json"

    def unit_path(self, task: str, seed: int) -> Path:
        return self.root / "units" / f"{task}__seed{seed}.json"

    def vector_path(self, task: str, spec: str, seed: int) -> Path:
        return self.root / "vectors" / f"{task}__{spec}__seed{seed}.safetensors"

    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    # --- state -----------------------------------------------------------------------------
    def status(self) -> dict:
        if not self.status_path.is_file():
            return {}
        return _read_json(self.status_path)

    def is_complete(self) -> bool:
        return self.status().get("state") == COMPLETE

    def is_complete_for(self, config_hash: str) -> bool:
        """Complete, and computed under ``config_hash`` (so it may be read back as it is)."""
        if not self.is_complete() or not self.config_path.is_file():
            return False
        return _read_json(self.config_path).get("config_hash") == config_hash

    def check_usable(self) -> None:
        """Refuse, before any work, a path that is a file or a folder holding something else.

        Hidden ``.*.tmp`` files are what a write killed half-way leaves; they do not count."""
        if self.root.exists() and not self.root.is_dir():
            raise ConfigError(f"{self.root} is a file, not a run folder; choose another --out")
        if self.config_path.is_file() or not self.root.is_dir():
            return
        if any(not _is_temporary(p) for p in self.root.iterdir()):
            raise ConfigError(f"{self.root} exists and is not a taskvec run folder; choose another --out")

    def start(self, config: dict, config_hash: str, lineage: str = "", replace: bool = False) -> bool:
        """Create the folder, or reopen it. Returns True if earlier results may be reused.

        A folder of the same ``config_hash`` resumes. One of another configuration but the same
        non-empty ``lineage`` (e.g. the same run with fewer seeds) is *extended*: its config is
        replaced and the caller reuses what still matches. Anything else is refused, or with
        ``replace`` (a folder the caller owns, such as a stage of a reproduction) emptied first."""
        self.check_usable()
        if self.config_path.is_file():
            existing = _read_json(self.config_path)
            if existing.get("config_hash") == config_hash:
                self._set_status(RUNNING, resumed=True)
                return True
            if lineage and existing.get("lineage") == lineage:
                self._set_status(RUNNING, resumed=True, extended_from=existing.get("config_hash"))
                write_json(self.config_path, {**config, "config_hash": config_hash, "lineage": lineage})
                return True
            if not replace:
                raise ConfigError(
                    f"{self.root} holds a run of another configuration, model or task data "
                    f"({existing.get('config_hash')} != {config_hash}); choose another --out"
                )
            self._clear()
        write_json(self.config_path, {**config, "config_hash": config_hash, "lineage": lineage})
        self._set_status(RUNNING, resumed=False)
        return False

    def _clear(self) -> None:
        """Empty a run folder (its status first, so a kill half-way leaves no 'complete' folder)."""
        self.status_path.unlink(missing_ok=True)
        for path in self.root.iterdir():
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()

    def finish(self, **info) -> None:
        self._set_status(COMPLETE, **info)

    def _set_status(self, state: str, **info) -> None:
        status = self.status()
        status.update(info)
        status["state"] = state
        status[f"{state}_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        write_json(self.status_path, status)

    # --- units -----------------------------------------------------------------------------
    def load_unit(self, task: str, seed: int, identity: str | None = None) -> dict | None:
        """A finished unit, or None if it is missing, unreadable, or (given ``identity``) was
        computed under another run identity: such a unit is recomputed, never reused."""
        path = self.unit_path(task, seed)
        if not path.is_file():
            return None
        try:
            unit = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
        if not isinstance(unit, dict) or unit.get("task") != task or unit.get("seed") != seed:
            return None
        if identity is not None and unit.get("run_identity") != identity:
            return None
        return unit

    def save_unit(self, unit: dict, identity: str | None = None) -> None:
        """Store a finished unit, stamped with the run identity it was computed under."""
        if identity is not None:
            unit = {**unit, "run_identity": identity}
        write_json(self.unit_path(unit["task"], unit["seed"]), unit)


def _is_temporary(path: Path) -> bool:
    return path.name.startswith(".") and path.name.endswith(".tmp")


def _read_json(path: Path) -> dict:
    """A run-folder JSON file; a damaged one is reported by name, not as a traceback."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(
            f"{path} is damaged ({error}); delete the run folder or choose another --out"
        ) from None
    if not isinstance(value, dict):
        raise ConfigError(f"{path} is damaged (not a JSON object); choose another --out")
    return value

"""One self-describing folder per run; a crash never leaves a result that looks whole.

Every file is written to a temporary name and renamed into place. ``status.json`` says
``running`` until the very last write, which flips it to ``complete``; finished (task, seed)
units live in ``units/`` and are reused when the same configuration is run again, or a wider one
of the same *lineage* (the same settings with more seeds). Each unit carries the identity
(config + task data + weights) it was computed under, and one that does not match, or does not
parse, is recomputed rather than trusted.

One process writes a folder at a time: ``RunFolder.lock()`` holds an OS file lock on
``.taskvec.lock`` inside it (released when the holder exits, even by ``kill -9``); a second
command on the same folder is refused (or waits) instead of mixing its results in. The ranks of
one launch (torchrun, accelerate launch) count as one command: their rank 0 holds the lock and
each rank writes the units it claimed (``storage.claims``, ``pipelines.ranks``). Files get the
mode the umask gives (0644 under umask 0022), as any other file the user writes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path

import filelock

from taskvec.errors import ConfigError, FolderBusyError, StorageError, storage_error

RUNNING, COMPLETE = "running", "complete"
LOCK_NAME = ".taskvec.lock"
#: seconds a command waits for a folder's lock that a reader holds: ``RunFolder.state`` (``taskvec
#: runs``, ``load_run``) takes it for microseconds to see whether a command does, and a command
#: that found it taken at that moment was refused, as if another command were writing the folder
READERS_GRACE = 1.0
#: what wrote a folder, by the key its config.json records that command's options under
FOLDER_KINDS = {"experiment": "run", "reproduce": "reproduction", "analysis": "analysis"}


@contextmanager
def storage_errors(path: Path) -> Iterator[None]:
    """Writes in this block that fail for lack of space or permission raise a ``StorageError``."""
    try:
        yield
    except StorageError:
        raise
    except OSError as error:
        raise storage_error(error, path) from None


def _umask() -> int:
    """The process umask, read without changing it where Linux reports it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: Path, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file and an atomic rename.

    The file gets the mode a plain ``open`` would (``0666`` less the umask), not ``mkstemp``'s
    private 0600. A full disk or a read-only folder is a ``StorageError``; the old file stays."""
    with storage_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            os.fchmod(handle, 0o666 & ~_umask())
            with os.fdopen(handle, "wb") as stream:
                stream.write(data.encode() if isinstance(data, str) else data)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return path


def write_figure(figure, path: Path, **savefig_options) -> Path:
    """A matplotlib ``figure`` saved as a PNG the way ``write_atomic`` writes a file: under a
    temporary name renamed into place, removed if saving fails, a full disk naming ``path``.
    The caller closes the figure."""
    path = Path(path)
    with storage_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp.png")
        os.close(handle)
        try:
            figure.savefig(tmp, **savefig_options)
            os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
    return path


#: what ``check_writable`` writes to find a full disk: a little of what the run's first files take
PROBE_BYTES = 1 << 20


#: the start of the name of ``RunFolder.staged_report``'s folder, which ends ``<host>-<pid>.tmp``
_REPORT_STAGING = ".report-"
#: seconds after which another machine's report folder counts as left behind: a pid says nothing
#: across the machines of a shared file system, and a report is written in seconds
FOREIGN_STAGING_SECONDS = 3600.0


def _staging_name() -> str:
    return f"{_REPORT_STAGING}{socket.gethostname()}-{os.getpid()}.tmp"


def _drop_stale_staging(root: Path) -> None:
    """Delete the report folders a killed writer left (``kill -9``, out of memory, a requeued job):
    on this machine, its process is gone; from another machine (a cluster's shared file system),
    it is older than ``FOREIGN_STAGING_SECONDS``. A glob of the run's tables found their copies
    too, with the numbers of the run before."""
    here = socket.gethostname()
    for folder in root.glob(f"{_REPORT_STAGING}*.tmp"):
        host, _, pid = folder.name[len(_REPORT_STAGING) : -len(".tmp")].rpartition("-")
        if not pid.isdigit() or folder.name == _staging_name():
            continue
        stale = False
        if host in (here, ""):  # "": named by pid alone, as before the host was in the name
            stale = not _alive(int(pid))
        else:
            with suppress(OSError):
                stale = time.time() - folder.stat().st_mtime > FOREIGN_STAGING_SECONDS
        if stale:
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's: alive
        return True
    return True


def check_writable(root: Path) -> None:
    """Refuse, before any work, an output folder that cannot be written (read-only, forbidden or
    full, or under a file): a file of ``PROBE_BYTES`` is written to the disk and removed, in it or
    in its nearest existing parent (an empty file was made on a full disk too: the run found it
    full only once its model had loaded)."""
    place = root
    while not place.exists() and place != place.parent:
        place = place.parent
    if not place.is_dir():  # a file in the way (the folder itself being one, check_usable names)
        raise ConfigError(f"{place} is a file, not a folder, so {root} cannot be made; choose another --out")
    probe = None
    try:
        handle, probe = tempfile.mkstemp(dir=place, prefix=".taskvec-probe.", suffix=".tmp")
        with os.fdopen(handle, "wb") as written:
            written.write(bytes(PROBE_BYTES))
            written.flush()
            os.fsync(written.fileno())  # a disk with delayed allocation says it is full only here
    except OSError as error:
        refused = storage_error(error, root)
        if refused is error:  # not a known fault of storage (/proc, say): still the folder's
            refused = StorageError(f"{root} cannot be written ({error.strerror}); choose another --out")
        raise refused from None
    finally:
        if probe is not None:
            with suppress(OSError):
                os.unlink(probe)


class FolderLock:
    """One writer per folder: an exclusive OS lock on ``<folder>/.taskvec.lock``.

    ``with FolderLock(root):`` refuses (``FolderBusyError``) if another process holds it once a
    reader's look would have ended (``READERS_GRACE``); ``wait`` seconds waits that long more
    (``None``: as long as it takes); a reader's own look (``readers_grace=False``) does not wait.
    The lock is released on exit and by the OS when its holder dies; the lock file itself stays
    (deleting it would let two processes lock two different files), except where this lock made
    it and nothing else was written beside it (a command refused after it took the lock): the
    lock file goes again, and so do the folders it made for it, as if the command had never run.
    The same object may be re-entered by the thread that holds it; any other ``FolderLock`` of the
    folder, even in this process, is refused."""

    def __init__(self, root: str | Path, wait: float | None = 0, readers_grace: bool = True):
        self.root = Path(root)
        self.path = self.root / LOCK_NAME
        self.wait = wait
        grace = READERS_GRACE if readers_grace else 0.0
        self._lock = filelock.FileLock(self.path, timeout=-1 if wait is None else wait + grace)
        # what the first (holding) entry made: the lock file, and the folders for it, innermost first
        self._made_lock_file = False
        self._made_folders: list[Path] = []

    def __enter__(self) -> FolderLock:
        with storage_errors(self.path):
            folders = [folder for folder in (self.root, *self.root.parents) if not folder.exists()]
            lock_file = not self.path.exists()
            self.root.mkdir(parents=True, exist_ok=True)
            if self.path.is_symlink():  # a loop was a traceback; one elsewhere, a lock of another file
                raise StorageError(
                    f"{self.path} is a symbolic link, not the folder's lock file: remove it (taskvec "
                    "makes a plain one)"
                )
            try:
                self._lock.acquire()
            except filelock.Timeout:
                waited = f" (waited {self.wait:g} s)" if self.wait else ""
                raise FolderBusyError(
                    f"{self.root} is in use by another taskvec command{waited}; wait until it "
                    "finishes, or choose another --out"
                ) from None
            if self._lock.lock_counter == 1:  # the first entry (a re-entry finds them all there)
                self._made_lock_file, self._made_folders = lock_file, folders
        return self

    def __exit__(self, *exc) -> None:
        # the last exit: what this lock made goes again where nothing else was written (the lock
        # file unlinked while still held, so a peer that opened it finds it gone and retries)
        if self._lock.lock_counter == 1 and self._made_lock_file:
            with suppress(OSError):
                if all(path.name == LOCK_NAME for path in self.root.iterdir()):
                    self.path.unlink()
                    for folder in self._made_folders:
                        folder.rmdir()  # innermost first; one holding anything else stays, and its parents
        self._lock.release()

    @property
    def is_locked(self) -> bool:
        """Whether this object holds the lock now."""
        return self._lock.is_locked


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

    def lock(self, wait: float | None = 0, readers_grace: bool = True) -> FolderLock:
        """The folder's writer lock (``with folder.lock(): ...``); see ``FolderLock``."""
        return FolderLock(self.root, wait, readers_grace)

    # --- state -----------------------------------------------------------------------------
    def config(self) -> dict:
        """The folder's ``config.json`` (``{}`` if there is none)."""
        return _read_json(self.config_path) if self.config_path.is_file() else {}

    def kind(self) -> str:
        """What wrote the folder, by its config.json: ``run``, ``reproduction`` or ``analysis``;
        ``""`` where there is none, a damaged one or another program's."""
        try:
            return _kind_of(self.config())
        except ConfigError:
            return ""

    def not_a_run(self) -> ConfigError:
        """The one line for this folder given where a run's is needed, saying what it is instead
        and, for a folder that holds runs (a reproduction's), which they are."""
        if not self.root.is_dir():
            found = "a file" if self.root.exists() else "no such folder"
            return ConfigError(f"{self.root}: {found} (a taskvec run folder was expected)")
        try:
            kind = _kind_of(self.config())
        except ConfigError as damaged:  # its config.json does not parse: that is the line
            return damaged
        what = {
            "reproduction": "a reproduction (taskvec reproduce), not a run",
            "analysis": "an analysis's folder (taskvec analyze), not a run",
        }.get(kind, "not a taskvec run folder (no config.json of a run)")
        runs = [str(path.relative_to(self.root)) for path in runs_under(self.root)]
        if runs:
            shown = ", ".join(runs[:3]) + (f" and {len(runs) - 3} more" if len(runs) > 3 else "")
            what += f"; the runs in it: {shown}"
        return ConfigError(f"{self.root} is {what}")

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

    def check_not_busy(self, readers_grace: bool = True) -> None:
        """Refuse a folder another taskvec command is writing (it holds the lock), before a model
        loads for nothing; the lock is taken and given back (the command takes it again to
        write). Under a launcher only rank 0 may ask: it is the one that holds the lock."""
        if (self.root / LOCK_NAME).is_file():
            with self.lock(readers_grace=readers_grace):
                pass

    def state(self) -> str:
        """``complete``; ``running`` while a command holds the folder's lock; ``stopped`` where
        none does (killed or interrupted: the same command resumes it); ``""`` where nothing was
        started. A folder whose lock cannot be tried (read-only) and that is not complete reads
        ``running`` if its status says so, as written."""
        state = self.status().get("state", "")
        if state != RUNNING:
            return state
        try:  # no lock file: no command holds it (one takes it before it starts)
            self.check_not_busy(readers_grace=False)  # a look: a command holding it holds it on
        except FolderBusyError:
            return RUNNING
        except (StorageError, OSError):
            return state
        return "stopped"

    def check_usable(self) -> None:
        """Refuse, before any work, a path that is a file, a folder holding something else, or a
        place that cannot be written.

        Hidden ``.*.tmp`` files are what a write killed half-way leaves, and the lock file what
        any run leaves; they do not count."""
        if self.root.exists() and not self.root.is_dir():
            raise ConfigError(f"{self.root} is a file, not a run folder; choose another --out")
        check_writable(self.root)
        if self.config_path.is_file():
            try:
                recorded = self.config()
                written_by_taskvec = "config_hash" in recorded or bool(_kind_of(recorded))
            except ConfigError:  # a damaged config.json: the resume path says what is wrong
                return
            if not written_by_taskvec:
                raise ConfigError(
                    f"{self.root} holds another program's config.json (a model's folder?), not a "
                    "taskvec run; choose another --out"
                )
            return
        if not self.root.is_dir():
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
                self._drop_report()
                return True
            if not replace:
                raise self._other_run(existing, _comparable(existing, config), config_hash)
            self._clear()
        write_json(self.config_path, {**config, "config_hash": config_hash, "lineage": lineage})
        self._set_status(RUNNING, resumed=False)
        return False

    def refuse_other_run(self, config_hash: str, lineage: str = "", config: dict | None = None) -> None:
        """Refuse a folder holding a run of another configuration and lineage; checked (without
        writing anything) before the folder is locked, and again by ``start`` under the lock.
        ``config`` (what ``start`` would record) lets the refusal say what differs."""
        if not self.config_path.is_file():
            return
        existing = _read_json(self.config_path)
        if existing.get("config_hash") == config_hash or (lineage and existing.get("lineage") == lineage):
            return
        raise self._other_run(existing, _comparable(existing, config or {}), config_hash)

    def refuse_other_options(self, options: dict) -> None:
        """Before a model loads, refuse a folder whose run was asked with other ``options`` (a
        part of what ``start`` records, e.g. ``{"experiment": {...}}`` without the options a
        folder may change): a minute of loading a large model is not spent on a refusal."""
        if not self.config_path.is_file():
            return
        existing = _read_json(self.config_path)
        differences = _comparable(existing, options, only_asked=True)
        if differences:
            raise self._other_run(existing, differences, "")

    def _other_run(self, existing: dict, differences: list[str] | None, config_hash: str) -> ConfigError:
        """The refusal of a folder that holds another run, naming ``differences`` where there are
        any (``_comparable``; None: the two records cannot be compared)."""
        if not differences:
            same = ""
            if differences is not None:  # compared and read the same: data it records no print of
                same = (
                    ": what it records of its options and model reads the same, so its task data or "
                    "pictures changed since, or an older taskvec hashed them"
                )
            return ConfigError(
                f"{self.root} holds a run of another configuration, model or task data "
                f"({existing.get('config_hash')} != {config_hash}){same}; choose another --out, or "
                "delete the folder to compute it again"
            )
        more = f" and {len(differences) - 3} more" if len(differences) > 3 else ""
        return ConfigError(
            f"{self.root} holds another run ({'; '.join(differences[:3])}{more}); choose another --out, "
            "or give the folder's options"
        )

    #: what a run's (or a reproduction's) report consists of, written after the folder is
    #: complete: an extended folder's old report goes, so a kill between "complete" and its new
    #: report leaves none, not the old configuration's numbers beside a complete status (the same
    #: command writes it again). A reproduction's report.html and report_context.json stayed.
    REPORT_PARTS = ("report.md", "report.html", "report_context.json", "tables", "plots")

    @contextmanager
    def staged_report(self) -> Iterator[Path]:
        """A hidden folder to write the run's report into (its ``tables/``, ``plots/``,
        ``report.md``), moved into the run's folder once whole. A kill or a full disk half-way
        through the writing left some tables and no report.md beside a complete status; now the
        old report stays until the new one is written, and report.md, out first and in last, says
        the parts beside it are whole."""
        with storage_errors(self.root):
            _drop_stale_staging(self.root)
            staging = self.root / _staging_name()
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir()
        try:
            try:
                yield staging
            except StorageError as error:  # named where the file goes, not by the hidden folder
                raise StorageError(str(error).replace(str(staging), str(self.root))) from None
            with storage_errors(self.root):
                (self.root / "report.md").unlink(missing_ok=True)
                # file by file: tables/ holds the run's own files too (results_long.csv)
                written = sorted(path for path in staging.rglob("*") if path.is_file())
                for path in sorted(written, key=lambda path: path.name == "report.md"):
                    place = self.root / path.relative_to(staging)
                    place.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(path, place)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    @staticmethod
    def _drop(path: Path) -> None:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)

    def _drop_report(self) -> None:
        """Delete the report (``REPORT_PARTS``) of a folder extended to compute again."""
        for name in self.REPORT_PARTS:
            self._drop(self.root / name)

    def _clear(self) -> None:
        """Empty a run folder (its status first, so a kill half-way leaves no 'complete' folder);
        the lock file stays, held by the caller."""
        self.status_path.unlink(missing_ok=True)
        for path in self.root.iterdir():
            if path.name == LOCK_NAME:
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()

    def finish(self, **info) -> None:
        """Mark the folder complete with what the finished run reports (layer, seconds, ...)."""
        self._set_status(COMPLETE, **info, outcome=sorted(info))

    def _set_status(self, state: str, **info) -> None:
        status = self.status()
        if state == RUNNING:  # a resumed or extended run: the last completion's figures are stale
            for key in [*status.pop("outcome", []), f"{COMPLETE}_at"]:
                status.pop(key, None)
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
        if not seal_holds(unit):
            return None  # edited or damaged: its answers were taken as results
        unit.pop(SEAL, None)
        return unit

    def save_unit(self, unit: dict, identity: str | None = None) -> None:
        """Store a finished unit, stamped with the run identity it was computed under and the
        checksum of what it holds (a unit is the source of truth a read-back rebuilds from)."""
        if identity is not None:
            unit = {**unit, "run_identity": identity}
        write_json(self.unit_path(unit["task"], unit["seed"]), sealed(unit))


def text_checksum(text: str) -> str:
    """The checksum a file taskvec reads back records of a text (a table, a file's rows)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


#: the key of a JSON record (a unit, a run's results.json) that holds the checksum of the rest of it
SEAL = "checksum"


def sealed(record: dict) -> dict:
    """``record`` as it will read back from JSON, with the checksum of its content under ``SEAL``:
    a record edited by hand, or damaged, no longer matches it."""
    plain = json.loads(json.dumps(record, ensure_ascii=False, default=str))
    return {**plain, SEAL: _record_checksum(plain)}


def seal_holds(record: dict) -> bool:
    """Whether a record read back is as ``sealed`` wrote it (one an older taskvec wrote, with no
    seal, is taken as it is)."""
    recorded = record.get(SEAL)
    return recorded is None or recorded == _record_checksum(record)


def _record_checksum(record: dict) -> str:
    rest = {key: value for key, value in record.items() if key != SEAL}
    return text_checksum(json.dumps(rest, sort_keys=True, ensure_ascii=False))


def _is_temporary(path: Path) -> bool:
    return path.name == LOCK_NAME or (path.name.startswith(".") and path.name.endswith(".tmp"))


#: what a config.json records beside what its results depend on (versions, a task file's place,
#: the memory budget: ``Options.identity_values``): never a reason a folder differs
#: (a model's ``model_id`` too: it describes the weights the fingerprint beside it identifies, and
#: its wording changed between versions, which a refusal named as the difference)
_NOT_COMPARED = {"versions", "config_hash", "lineage", "source", "memory_budget_mb", "model_id"}


def _kind_of(recorded: dict) -> str:
    """What wrote a config.json (``RunFolder.kind``), from its content."""
    return next((kind for key, kind in FOLDER_KINDS.items() if key in recorded), "")


def _comparable(existing: dict, config: dict, only_asked: bool = False) -> list[str] | None:
    """``_differences`` of a folder's config.json and what a command would record, where both
    record one command's options (a run's, say); None where they cannot be compared leaf by leaf."""
    asked = json.loads(json.dumps(config, default=str))
    if not any(key in existing and key in asked for key in FOLDER_KINDS):
        return None
    return _differences(existing, asked, only_asked=only_asked)


def _differences(recorded: dict, asked: dict, prefix: str = "", only_asked: bool = False) -> list[str]:
    """What differs between a folder's config.json and the one a command would write, leaf by
    leaf (``experiment.n_examples: 5 in the folder, 4 now``); a part with a name
    of its own (a template, a model) that names another is said by its name alone.
    ``only_asked``: compare the keys ``asked`` holds, not the ones only the folder records."""
    found = []
    keys = set(asked) if only_asked else set(recorded) | set(asked)
    for key in sorted(keys, key=str):
        if key in _NOT_COMPARED:
            continue
        then, now = recorded.get(key), asked.get(key)
        if isinstance(then, dict) and isinstance(now, dict) and then.get("name") == now.get("name"):
            found += _differences(then, now, f"{prefix}{key}.", only_asked)
        elif isinstance(then, dict) and isinstance(now, dict):
            found.append(f"{prefix}{key}: {_briefs(then['name'], now['name'])}")
        elif then != now:
            found.append(f"{prefix}{key}: {_briefs(then, now)}")
    return found


def _briefs(then, now, width: int = 40) -> str:
    """``<then> in the folder, <now> now``, each cut to ``width`` characters after what both
    begin with (two long names cut at the same place read the same)."""
    texts = ["none" if value is None else json.dumps(value, ensure_ascii=False) for value in (then, now)]
    same = len(os.path.commonprefix(texts))
    start = same - 10 if same > width - 10 else 0
    cut = [("..." if start else "") + t[start:] for t in texts]
    cut = [t if len(t) <= width else t[: width - 3] + "..." for t in cut]
    return f"{cut[0]} in the folder, {cut[1]} now"


def runs_under(root: str | Path, damaged: bool = False) -> list[Path]:
    """``root`` if it is a run folder, else every run folder under it, in path order; with
    ``damaged``, also the folders whose config.json does not parse (a run's, as likely as not: a
    listing shows them as damaged rather than hiding them)."""
    root = Path(root)
    if RunFolder(root).kind() == "run":
        return [root]
    return [path for path in _with_config(root) if _is_run(path) or (damaged and _config_damaged(path))]


def folders_of_kind(root: str | Path, kinds: Collection[str]) -> list[Path]:
    """``root`` and every folder under it that a command of ``kinds`` wrote (``RunFolder.kind``),
    in path order."""
    return [path for path in _with_config(Path(root)) if RunFolder(path).kind() in kinds]


def folders_starting(root: str | Path) -> list[Path]:
    """``root`` and the folders under it that a taskvec command holds but has written nothing in
    yet: a command loading its model takes the folder's lock first and writes config.json after,
    and a listing of config.json files alone did not show it. A look tries each lock, as
    ``RunFolder.state`` does (a lock file left by a killed command is not held: not listed)."""
    starting = []
    for lock_file in sorted(Path(root).rglob(LOCK_NAME)):
        folder = RunFolder(lock_file.parent)
        if folder.config_path.exists():
            continue
        try:
            folder.check_not_busy(readers_grace=False)
        except FolderBusyError:
            starting.append(folder.root)
        except (StorageError, OSError):  # one that cannot be looked at (read-only) is not told
            continue
    return starting


def _with_config(root: Path) -> list[Path]:
    """``root`` and the folders under it that hold a config.json, in path order."""
    return sorted(path.parent for path in root.rglob("config.json"))


def _is_run(path: Path) -> bool:
    return RunFolder(path).kind() == "run"


def _config_damaged(path: Path) -> bool:
    """Whether ``path``'s config.json does not parse as the JSON object every taskvec folder's is."""
    try:
        RunFolder(path).config()
    except ConfigError:
        return True
    return False


#: the cure for a damaged folder file, worded for the commands that only read a folder too
#: (`taskvec runs`, `verify`, `load_run`), which have no --out
_DAMAGED_CURE = "delete that run folder and run its command again, or run it into another folder"


def _read_json(path: Path) -> dict:
    """A run-folder JSON file; a damaged one is reported by name, not as a traceback."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path} is damaged ({error}); {_DAMAGED_CURE}") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{path} is damaged (not a JSON object); {_DAMAGED_CURE}")
    return value

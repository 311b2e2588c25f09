"""Errors that name the problem; raised before the first forward pass wherever possible."""

from __future__ import annotations

import errno
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class TaskvecError(Exception):
    """Base class: a problem with the user's input or set-up, never a bug in taskvec."""


class TaskFileError(TaskvecError, ValueError):
    """A task file is missing, malformed or inconsistent."""


class ImageError(TaskvecError, ValueError):
    """An image is missing, unreadable, truncated or otherwise unusable."""


class TemplateError(TaskvecError):
    """A prompt template cannot produce the delimiter the protocol needs.

    Not a ValueError on purpose: pydantic would wrap a ValueError, and users should see this class.
    """


class ModelSpecError(TaskvecError, ValueError):
    """An unknown model name or family, or weights that are not installed."""


class LayerError(TaskvecError, IndexError):
    """A decoder layer index outside the model."""


class VectorMismatchError(TaskvecError, ValueError):
    """A task vector that does not fit the model it is used with."""


class VectorFileError(VectorMismatchError):
    """A saved task vector that is missing, unreadable, or fails its checksum (corrupt or edited).

    A subclass of ``VectorMismatchError``: either way the vector must not be used."""


class DeviceError(TaskvecError, ValueError):
    """A device this machine's torch cannot compute on (no CUDA build, no such GPU)."""


class ConfigError(TaskvecError, ValueError):
    """Conflicting or impossible run options.

    ``fields``: (field, problem) pairs when the options' validation named them, so the command
    line can name its flags instead (``test_layers`` -> ``--test-layers``)."""

    def __init__(self, message: str, fields: tuple[tuple[str, str], ...] = ()):
        super().__init__(message)
        self.fields = fields


class MemoryBudgetError(TaskvecError, MemoryError):
    """A single item does not fit in the memory budget."""


class FolderBusyError(TaskvecError, RuntimeError):
    """A run folder another taskvec process is writing to (it holds the folder's lock)."""


class StorageError(TaskvecError, OSError):
    """A file that cannot be written: no space left, a read-only or forbidden place.

    Raised with what to do; the run folder stays as it was (writes are atomic), so the same
    command resumes once the cause is fixed."""


#: errors of the place written to, not of taskvec: each becomes a ``StorageError`` that says so
_STORAGE_ERRNOS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EFBIG: "the file is larger than this process may write (ulimit -f, a quota)",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
}


def storage_error(error: OSError, path: str | Path | None = None) -> OSError:
    """``error`` as a one-line ``StorageError`` naming ``path`` and the cure, if it is a fault of
    the place written to (full, read-only, forbidden); any other ``OSError`` as it is."""
    reason = _STORAGE_ERRNOS.get(error.errno)
    if reason is None:
        return error
    path = path or error.filename or "a file"
    return StorageError(
        f"{path}: {reason} (Errno {error.errno}); free space or fix the permissions and run the "
        "same command again (a run folder resumes where it stopped), or choose another --out"
    )


class ResultWarning(UserWarning):
    """Something about a run's inputs that bears on what its numbers mean (a label the answer
    budget cuts, a prompt past the model's trained context): said as it happens, and recorded
    with the run (``recorded_warnings``), so whoever reads the results later reads it too."""


@contextmanager
def recorded_warnings() -> Iterator[list[str]]:
    """The ``ResultWarning``s said inside the block, each once and in order, as
    ``"Category: message"``. Every warning is shown once in the block, of whatever category (a
    message said for every unit of a run was shown every time: each unit's block started a new
    count of what was shown). What the warnings filters silence is neither shown nor recorded; a
    warning an earlier run of this process said is said and recorded again (the block starts its
    own count, as ``catch_warnings`` does). Blocks nest: an inner block's warnings are the outer's
    too, and shown once in the outer."""
    said: list[str] = []
    shown: set[str] = set()
    with warnings.catch_warnings():
        show = warnings.showwarning

        def record(message, category, filename, lineno, file=None, line=None) -> None:
            text = f"{category.__name__}: {' '.join(str(message).split())}"
            if text in shown:
                return
            shown.add(text)
            if issubclass(category, ResultWarning):
                said.append(text)
            show(message, category, filename, lineno, file, line)

        warnings.showwarning = record
        yield said


def warning_message(recorded: str) -> str:
    """The message of a warning ``recorded_warnings`` recorded (``"Category: message"``), as it was
    shown."""
    return recorded.split(": ", 1)[-1]

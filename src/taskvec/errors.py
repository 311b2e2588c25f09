"""Errors that name the problem; raised before the first forward pass wherever possible."""


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
    """Conflicting or impossible run options."""


class MemoryBudgetError(TaskvecError, MemoryError):
    """A single item does not fit in the memory budget."""

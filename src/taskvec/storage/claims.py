"""Which rank of a launch computes which unit: a claim record in the shared run folder.

Under a launcher (``torchrun``, ``accelerate launch``) every rank walks the same list of pending
units and *claims* one before computing it. ``units/claims.json`` maps a unit's key to the
launch and rank that took it; it is read and rewritten only under ``units/.claims.lock`` (an OS
file lock, held for the few milliseconds of one claim) and replaced atomically, so two ranks never
take the same unit, and a rank that finishes sooner simply claims the next one: the faster rank
takes more, and nothing schedules them.

**Stale claims.** A claim names the *launch* that made it: an id that rank 0 draws afresh each
time a launch starts and hands to every rank. Only one launch works in a folder at a time (its
rank 0 holds the folder's writer lock, ``RunFolder.lock``, for the whole run), so a claim of any
other launch id belongs to a launch that is over: finished, or killed (a rank that died by
SIGKILL takes its whole launch down with it, as torchrun stops the other ranks). Such a claim is
taken over; a unit that launch finished is on disk and is no longer pending. Claims of the
current launch are never taken over, so no rank ever writes another rank's unit.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import filelock

from taskvec.storage.run_folder import storage_errors, write_json

CLAIMS_NAME = "claims.json"
CLAIMS_LOCK = ".claims.lock"


class Claims:
    """The claim record of one folder (``<folder>/units/claims.json``), seen by one rank.

    ``for key in claims.take_each(keys): ...`` yields the keys this rank claimed, one at a time,
    in the order of ``keys``, until every key is claimed by some rank of this launch."""

    def __init__(self, units: str | Path, launch: str, rank: int):
        self.units = Path(units)
        self.path = self.units / CLAIMS_NAME
        self.launch, self.rank = launch, rank
        self._lock = filelock.FileLock(self.units / CLAIMS_LOCK, timeout=-1)

    def record(self) -> dict[str, dict]:
        """Unit key -> ``{"launch": id, "rank": r}`` (``{}`` before the first claim; a record
        that does not parse, as a kill can only leave it whole, is read as empty)."""
        try:
            value = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            return {}
        return value if isinstance(value, dict) else {}

    def take(self, keys: Sequence[str]) -> str | None:
        """Claim the first of ``keys`` that no rank of this launch has claimed; None if none is left."""
        with storage_errors(self.path):
            self.units.mkdir(parents=True, exist_ok=True)
            with self._lock:
                record = self.record()
                for key in keys:
                    owner = record.get(key)
                    if isinstance(owner, dict) and owner.get("launch") == self.launch:
                        continue  # this launch's: done or under way on some rank
                    record[key] = {"launch": self.launch, "rank": self.rank}
                    write_json(self.path, record)
                    return key
        return None

    def take_each(self, keys: Sequence[str]) -> Iterator[str]:
        while (key := self.take(keys)) is not None:
            yield key

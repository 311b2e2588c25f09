"""The ranks of a launch: one process (the default), or N under ``torchrun`` / ``accelerate launch``.

A launcher starts the same command N times and tells each copy who it is in its environment
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``). Each rank loads the
model once (``--device cuda`` means ``cuda:$LOCAL_RANK``), and in every run folder:

1. rank 0 takes the folder's writer lock (a second command on the folder is still refused) and
   opens or resumes the folder; a barrier;
2. every rank claims pending units from the folder's claim record (``storage.claims``) and
   writes the units it claimed, atomically, as one process does;
3. a barrier; rank 0 assembles the tables, plots and report from the units on disk; a barrier,
   after which the other ranks read the finished folder back.

The barriers go through ``torch.distributed`` on the gloo backend (CPU sockets; it works beside
CUDA too, and needs nothing the launchers do not already set). We chose it over waiting on the
folder (polling for a status file) because it is simpler to get right: a barrier cannot miss a
state that was written and overwritten between two polls, it needs no poll interval, and when a
rank dies its peers' barrier fails at once instead of waiting forever. The same channel hands every
rank the *launch id* that rank 0 draws, which marks this launch's claims (see ``storage.claims``
for how claims of a killed launch are taken over).

Without a launcher (``WORLD_SIZE`` unset or 1) nothing here does anything: no process group, no
claim record, the folder lock as before.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from pathlib import Path

from taskvec.errors import ConfigError
from taskvec.storage.claims import Claims
from taskvec.storage.run_folder import RunFolder

#: how long a rank waits at a barrier for the others (rank 0 assembling a large run's tables, the
#: slowest rank's last unit); a dead rank fails the barrier at once, so this bounds only a hang
BARRIER_TIMEOUT = timedelta(hours=12)

#: set once this process claims units of its own: from then on the ranks do different work
_PARTED = threading.Event()

#: how long a rank waits for the launch's other processes before it says so in one line (a
#: ``WORLD_SIZE`` left in a job's environment without a launcher waited in silence, for hours)
RENDEZVOUS_NOTICE_SECONDS = 10.0


def launch_size() -> int:
    """The number of processes of this launch, from the launcher's ``WORLD_SIZE`` (unset or empty:
    1); a value that is not a whole number is refused in one line, not a traceback."""
    value = os.environ.get("WORLD_SIZE", "").strip() or "1"
    try:
        return int(value)
    except ValueError:
        raise ConfigError(
            f"WORLD_SIZE is {value!r}, not a number of processes: a launcher sets it (torchrun, "
            "accelerate launch); unset it to run one process"
        ) from None


@dataclass(frozen=True)
class Ranks:
    """Who this process is in its launch: ``rank`` of ``world``, in launch ``launch``."""

    rank: int = 0
    world: int = 1
    launch: str = ""

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that opens folders and assembles tables, plots and reports."""
        return self.rank == 0

    @property
    def parallel(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        """Wait until every rank is here (nothing to wait for in one process)."""
        if self.parallel:
            import torch.distributed as dist

            dist.barrier()

    def check_folder(self, folder: RunFolder) -> None:
        """Before a model loads: the folder can hold this run, and (on rank 0, the lock's holder)
        no other command is writing it."""
        folder.check_usable()
        if self.is_main:
            folder.check_not_busy()

    def folder_lock(self, folder: RunFolder) -> AbstractContextManager:
        """The folder's writer lock on rank 0, for the whole launch; nothing on the others (they
        write their claimed units under rank 0's lock)."""
        return folder.lock() if self.is_main else nullcontext()

    def claims(self, units: Path) -> Claims | None:
        """The claim record of a folder's ``units``; None in one process (it takes every unit)."""
        return Claims(units, self.launch, self.rank) if self.parallel else None

    def each(self, units: Path, keys: list[str]) -> Iterable[str]:
        """The keys this rank computes, in order: all of them in one process, else those it
        claims one at a time (a generator: each claim is made as the previous unit is done)."""
        claims = self.claims(units)
        if claims is None:
            return keys
        _PARTED.set()
        return claims.take_each(keys)


def place_in_launch() -> tuple[int, int]:
    """(rank, local rank) as the launcher's environment gives them, without setting up the process
    group (0, 0 without a launcher): what an error message needs, even one raised before ``current``."""
    try:
        if launch_size() <= 1:
            return 0, 0
    except ConfigError:  # said by the error this place is asked for
        return 0, 0
    return int(os.environ.get("RANK", "0") or 0), int(os.environ.get("LOCAL_RANK", "0") or 0)


def ranks_parted() -> bool:
    """Whether this launch's ranks may have done different work (before they claim units, every
    rank of a machine runs the same checks on the same options and files)."""
    return _PARTED.is_set()


def _say_waiting(world: int) -> None:
    """The line a rank says while its launch's other processes have not all come."""
    from taskvec.pipelines.progress import announce

    where = f"{os.environ.get('MASTER_ADDR')}:{os.environ.get('MASTER_PORT')}"
    announce(
        f"rank {os.environ.get('RANK')}: waiting for the launch's {world} processes at {where} "
        f"(WORLD_SIZE={world}); without a launcher, unset WORLD_SIZE"
    )


@cache
def current() -> Ranks:
    """This process's place in its launch, read from the launcher's environment once; under a
    launcher, the gloo process group is set up here and rank 0's launch id handed to all."""
    world = launch_size()
    if world <= 1:
        return Ranks()
    import torch.distributed as dist

    if not dist.is_initialized():
        missing = [name for name in ("RANK", "MASTER_ADDR", "MASTER_PORT") if not os.environ.get(name)]
        if missing:
            raise ConfigError(
                f"WORLD_SIZE is {world}, but {', '.join(missing)} is not set: start the ranks with "
                "torchrun or accelerate launch (docs/scaling-out.md), or unset WORLD_SIZE"
            )
        waiting = threading.Timer(RENDEZVOUS_NOTICE_SECONDS, _say_waiting, (world,))
        waiting.daemon = True
        waiting.start()
        try:
            dist.init_process_group("gloo", timeout=BARRIER_TIMEOUT)
        finally:
            waiting.cancel()
    rank = dist.get_rank()
    launch = [uuid.uuid4().hex if rank == 0 else None]
    dist.broadcast_object_list(launch, src=0)
    return Ranks(rank, dist.get_world_size(), str(launch[0]))

"""The claim record that hands units to the ranks of a launch: every unit goes to exactly one
rank of the launch, even when ranks claim at the same moment; claims of an earlier (killed)
launch are taken over, those of the current launch never."""

from __future__ import annotations

import json
import multiprocessing

from taskvec.storage.claims import Claims

KEYS = [f"task{t}__seed{s}" for t in range(6) for s in (1, 2, 3)]


def _claim_all(units: str, launch: str, rank: int, out) -> None:
    out.put((rank, list(Claims(units, launch, rank).take_each(KEYS))))


def test_ranks_claiming_at_once_share_the_units_each_exactly_once(tmp_path):
    context = multiprocessing.get_context("fork")  # no re-import: the workers only claim
    queue = context.Queue()
    workers = [
        context.Process(target=_claim_all, args=(str(tmp_path / "units"), "launch-a", rank, queue))
        for rank in range(4)
    ]
    for worker in workers:
        worker.start()
    taken = dict(queue.get(timeout=120) for _ in workers)
    for worker in workers:
        worker.join(timeout=120)
    claimed = [key for keys in taken.values() for key in keys]
    assert sorted(claimed) == sorted(KEYS)  # none twice, none left out
    record = json.loads((tmp_path / "units" / "claims.json").read_text())
    assert {key: owner["rank"] for key, owner in record.items()} == {
        key: rank for rank, keys in taken.items() for key in keys
    }


def test_a_rank_takes_the_next_unit_as_soon_as_it_is_free_of_its_last(tmp_path):
    fast, slow = Claims(tmp_path, "launch-a", 0), Claims(tmp_path, "launch-a", 1)
    assert slow.take(KEYS[:3]) == KEYS[0]
    assert fast.take(KEYS[:3]) == KEYS[1]
    assert fast.take(KEYS[:3]) == KEYS[2]  # the faster rank takes more
    assert slow.take(KEYS[:3]) is None and fast.take(KEYS[:3]) is None


def test_claims_of_a_killed_launch_are_taken_over_and_this_launchs_are_not(tmp_path):
    killed = Claims(tmp_path, "launch-a", 1)
    assert killed.take(KEYS[:2]) == KEYS[0]  # its rank died with this unit unfinished
    again = Claims(tmp_path, "launch-b", 0)
    assert list(again.take_each(KEYS[:2])) == KEYS[:2]
    assert Claims(tmp_path, "launch-b", 1).take(KEYS[:2]) is None
    assert {owner["launch"] for owner in again.record().values()} == {"launch-b"}

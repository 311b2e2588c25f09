"""A launcher's environment left in a job without a launcher: said in one line, never a
traceback or a silent wait."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from taskvec.errors import ConfigError
from taskvec.pipelines import ranks


@pytest.mark.parametrize(("value", "size"), [(None, 1), ("", 1), (" 2 ", 2), ("1", 1)])
def test_the_launch_size_is_world_size_or_one(value, size, monkeypatch):
    if value is None:
        monkeypatch.delenv("WORLD_SIZE", raising=False)
    else:
        monkeypatch.setenv("WORLD_SIZE", value)
    assert ranks.launch_size() == size


def test_a_world_size_that_is_not_a_number_is_one_line_on_every_command(monkeypatch):
    """It was a traceback from the command's first line (the SIGTERM handler's check)."""
    env = {**os.environ, "WORLD_SIZE": "abc"}
    done = subprocess.run(
        [sys.executable, "-m", "taskvec", "tasks"], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: WORLD_SIZE is 'abc', not a number of processes: a launcher sets it (torchrun, "
        "accelerate launch); unset it to run one process"
    ]
    monkeypatch.setenv("WORLD_SIZE", "abc")
    with pytest.raises(ConfigError, match="not a number of processes"):
        ranks.launch_size()
    assert ranks.place_in_launch() == (0, 0)  # what the one line's error needs, not a second error


def test_a_rank_waiting_for_the_others_says_so(monkeypatch, capsys):
    """A WORLD_SIZE of 2 left in a job's environment, one process: it waited for the second
    process up to the barrier timeout (12 hours) with an empty log."""
    import torch.distributed as dist

    for name, value in {
        "WORLD_SIZE": "2",
        "RANK": "0",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": "1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(ranks, "RENDEZVOUS_NOTICE_SECONDS", 0.1)

    def never_joined(*args, **kwargs):
        time.sleep(1.0)
        raise RuntimeError("the rendezvous timed out")

    monkeypatch.setattr(dist, "init_process_group", never_joined)
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    ranks.current.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="timed out"):
            ranks.current()
    finally:
        ranks.current.cache_clear()
    said = " ".join(capsys.readouterr().err.split())
    assert "rank 0: waiting for the launch's 2 processes at 127.0.0.1:1" in said
    assert "without a launcher, unset WORLD_SIZE" in said

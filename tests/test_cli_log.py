"""The command's output in a job's log (no terminal): no bars that redraw themselves with \\r."""

from __future__ import annotations

import subprocess
import sys

#: the command's start, then a tqdm bar as transformers draws one while it converts GGUF weights
_COMMAND_THEN_A_BAR = """
import sys
from taskvec import cli
cli.app = lambda **_: None
cli.main()
import tqdm
for _ in tqdm.tqdm(range(3), desc="converting", file=sys.stderr):
    pass
"""


def test_the_libraries_tqdm_bars_are_off_in_a_log():
    """transformers' "Converting and de-quantizing GGUF tensors" bar wrote hundreds of \\r redraws
    into the log of every job that loaded a model not yet cached."""
    import os

    env = {key: value for key, value in os.environ.items() if key != "TQDM_DISABLE"}
    done = subprocess.run(
        [sys.executable, "-c", _COMMAND_THEN_A_BAR], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "converting" not in done.stderr

"""The ``taskvec`` command turns every ``TaskvecError`` into one red line and exit code 2, never a
traceback; a bug (any other exception) is not disguised as a user error."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from taskvec import errors
from taskvec.cli import app
from taskvec.errors import TaskvecError


def _subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


ALL_ERRORS = [TaskvecError, *_subclasses(TaskvecError)]
#: long, multi-line, and with text that looks like markup: it must still come out as one literal line
MESSAGE = "task 'x': item 'y' is [bold]wrong[/bold]\n  second line " + "and a long tail " * 20


def _error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


def _invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def test_every_error_class_is_defined_in_taskvec_errors():
    assert {cls.__module__ for cls in ALL_ERRORS} == {errors.__name__}
    assert len(ALL_ERRORS) >= 10


@pytest.mark.parametrize("error", ALL_ERRORS, ids=[cls.__name__ for cls in ALL_ERRORS])
def test_run_prints_any_taskvec_error_as_one_line_and_exits_2(error, tmp_path, monkeypatch):
    def failing(*_args, **_kwargs):
        raise error(MESSAGE)

    monkeypatch.setattr("taskvec.pipelines.evaluate.evaluate", failing)
    result = _invoke("run", "--tasks", "food_color", "--out", str(tmp_path / "run"))
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert _error_lines(result.output) == ["error: " + " ".join(MESSAGE.split())]


@pytest.mark.parametrize(
    ("make_args", "words"),
    [
        (lambda tmp: ["--tasks", "no_such_task"], "unknown task 'no_such_task'"),
        (lambda tmp: ["--tasks", str(tmp / "absent.json")], "absent.json"),
        (lambda tmp: ["--n-examples", "0"], "--n-examples: "),
        (lambda tmp: ["--template", "fancy"], "unknown template 'fancy'"),
        (
            lambda tmp: [
                "--template",
                _file(tmp / "t.json", json.dumps({"name": "t", "output_prefix": "A"})),
            ],
            "output_prefix 'A' must end with the delimiter ':'",
        ),
        (lambda tmp: ["--template", _file(tmp / "t.json", "{not json")], "t.json: cannot read it as JSON"),
        (
            lambda tmp: [
                "--template",
                _file(tmp / "T.JSON", "\ufeff" + json.dumps({"name": "t", "delimiter": " "})),
            ],
            "the delimiter ' ' ends in white space",
        ),
        (lambda tmp: ["--template", str(tmp / "absent.json")], "absent.json: no such file"),
        (
            lambda tmp: ["--config", str(tmp / "absent.yaml")],
            "absent.yaml: no such file",
        ),
        (lambda tmp: ["--out", _file(tmp / "taken", "x")], "is a file, not a run folder"),
        (lambda tmp: ["--layer", "30"], "layer 30 is out of range for smollm2-135m"),
        (lambda tmp: ["--memory-budget-mb", "0.05"], "give a larger --memory-budget-mb"),
    ],
    ids=[
        "unknown task",
        "missing task file",
        "zero examples",
        "unknown template",
        "template without delimiter",
        "template file not JSON",
        "template file of upper-case suffix and a BOM, its delimiter a space",
        "template file missing",
        "options file missing",
        "out is a file",
        "layer out of range",
        "memory budget",
    ],
)
def test_run_reports_real_bad_input_in_one_line(make_args, words, smollm2, tmp_path, monkeypatch):
    monkeypatch.setattr("taskvec.pipelines.evaluate.load_model", lambda _name, _options=None: smollm2)
    args = [
        "run",
        "--tasks",
        "food_color",
        "--seed",
        "1",
        "--out",
        str(tmp_path / "run"),
        *make_args(tmp_path),
    ]
    result = _invoke(*args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = _error_lines(result.output)
    assert len(lines) == 1 and words in lines[0], result.output
    assert not (tmp_path / "run").exists()


def _file(path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_every_command_not_only_run_turns_taskvec_errors_into_one_line(monkeypatch):
    def broken(_name):
        raise errors.TaskFileError("food_color.json: val.0.output: Field required")

    monkeypatch.setattr("taskvec.tasks.registry.load_task", broken)
    result = _invoke("tasks")
    assert result.exit_code == 2
    assert _error_lines(result.output) == ["error: food_color.json: val.0.output: Field required"]


def test_a_bug_is_not_disguised_as_a_user_error(tmp_path, monkeypatch):
    def buggy(*_args, **_kwargs):
        raise RuntimeError("a bug in taskvec")

    monkeypatch.setattr("taskvec.pipelines.evaluate.evaluate", buggy)
    result = _invoke("run", "--tasks", "food_color", "--out", str(tmp_path / "run"))
    assert result.exit_code != 2 and isinstance(result.exception, RuntimeError)
    assert not _error_lines(result.output)


#: what torch raises when a CUDA allocation fails (its first sentences; the rest is allocator advice)
OUT_OF_MEMORY = (
    "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.19 GiB of which "
    "1.02 GiB is free. Including non-PyTorch memory, this process has 78.16 GiB memory in use. Of the "
    "allocated memory 76.90 GiB is allocated by PyTorch, and 0.62 GiB is reserved by PyTorch but "
    "unallocated. If reserved but unallocated memory is large try setting "
    "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation."
)


@pytest.mark.parametrize(
    ("command", "target", "cure"),
    [
        (
            "run",
            "taskvec.pipelines.evaluate.evaluate",
            "lower --memory-budget-mb .*bfloat16.* same command resumes",
        ),
        ("align", "taskvec.pipelines.align.align_projector", r"\): use a GPU with more free memory$"),
    ],
)
def test_a_gpu_out_of_memory_is_one_line_with_its_cure(tmp_path, monkeypatch, command, target, cure):
    """On a GPU, a batch too large for its memory ended in torch's traceback and a page of
    allocator advice; it is the machine's limit, said in one line with what lowers the need."""
    import torch

    def out_of_memory(*_args, **_kwargs):
        raise torch.OutOfMemoryError(OUT_OF_MEMORY)

    monkeypatch.setattr(target, out_of_memory)
    args = ["--tasks", "food_color"] if command == "run" else ["--stage", "projector"]
    result = _invoke(command, *args, "--out", str(tmp_path / "out"))
    assert result.exit_code == 2, result.output
    lines = _error_lines(result.output)
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert lines[0].startswith(
        "error: out of GPU memory (CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0"
    )
    assert "expandable_segments" not in lines[0]
    assert re.search(cure, lines[0]), lines[0]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--template", "bogus"], "unknown template 'bogus'; reproduce takes one of ['paper', 'spaced']"),
        (["--seed", "2", "3"], "--quick runs one seed, and 2 were given"),
        (["--style", "noto", "noto"], "a style is named twice (noto, noto)"),
    ],
    ids=["template typo", "seeds of a quick run", "a style twice"],
)
def test_reproduce_refuses_bad_options_before_making_its_folder(args, words, tmp_path):
    """A template typo made the folder, which then refused the corrected command as "another
    run"; ``--quick --seed 2 3`` ran seed 2 alone, without a word."""
    out = tmp_path / "reproduction"
    result = _invoke("reproduce", "--quick", "-t", "food_color", "--out", str(out), *args)
    assert result.exit_code == 2, result.output
    lines = _error_lines(result.output)
    assert len(lines) == 1 and words in lines[0], result.output
    assert not out.exists()


def test_reproduce_prompts_any_model_but_the_embedded_vlm_with_the_papers_template():
    """Every model got ``spaced`` (for the embedded VLM's tokens), so a HF VLM's report stood its
    numbers beside the paper's under another template than the paper's."""
    from taskvec.pipelines.reproduce import ReproduceConfig

    assert ReproduceConfig.create().template == "spaced"  # the embedded VLM
    assert ReproduceConfig.create(model="llava-hf/llava-1.5-7b-hf").template == "paper"
    assert ReproduceConfig.create(model="llava-hf/llava-1.5-7b-hf", template="spaced").template == "spaced"


def test_a_reproduction_of_a_model_in_memory_takes_that_models_template():
    """``reproduce(config, adapter=my_llava)`` with the options' model left out ran under the
    default model's ``spaced`` template; a template the options name stays."""
    from taskvec.pipelines.reproduce import ReproduceConfig

    assert ReproduceConfig.create().named_after("my-llava").template == "paper"
    assert ReproduceConfig.create().named_after("embedded-vlm-gemma3").template == "spaced"
    assert ReproduceConfig.create(template="spaced").named_after("my-llava").template == "spaced"
    assert ReproduceConfig.create(quick=True).named_after("my-llava").template == "paper"


#: a command that is sent SIGTERM while it works (a scheduler ending the job, ``kill``)
TERMINATED = """
import os, signal, sys, time
import taskvec.pipelines.results as results

def working(*_args, **_kwargs):
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(60)

results.list_runs = working
sys.argv = ["taskvec", "runs", sys.argv[1]]
from taskvec.cli import main
main()
"""


@pytest.mark.parametrize("world_size", ["1", "", "2"])
def test_sigterm_ends_a_command_in_one_line_as_ctrl_c_does(tmp_path, world_size):
    """SIGTERM ended a command silently (exit -15), its lock and half-done step left to the OS;
    it now unwinds as Ctrl-C does and says so (exit 143). A launcher's rank keeps the default (its
    peers may wait in a collective that a Python handler would never leave)."""
    import os
    import signal
    import subprocess
    import sys

    env = {**os.environ, "WORLD_SIZE": world_size}  # "": a job script's unset $N, read as 1
    done = subprocess.run(
        [sys.executable, "-c", TERMINATED, str(tmp_path)], capture_output=True, text=True, env=env, timeout=99
    )
    if world_size == "2":  # a launcher's rank
        assert done.returncode == -signal.SIGTERM
    else:
        assert done.returncode == 143, done.stderr[-2000:]
        assert "terminated (SIGTERM)" in done.stdout + done.stderr and "Traceback" not in done.stderr


#: SIGTERM while the command works, and a second one (a scheduler's, a kill typed twice) while
#: the first unwinds: the process's shutdown is slowed so that the second lands in it
TERMINATED_TWICE = """
import atexit, os, signal, sys, threading, time
import taskvec.pipelines.results as results

atexit.register(time.sleep, 1.0)

def working(*_args, **_kwargs):
    threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM)).start()
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(60)

results.list_runs = working
sys.argv = ["taskvec", "runs", sys.argv[1]]
from taskvec.cli import main
main()
"""
TERMINATED_AFTER_ITS_WORK = """
import os, signal, sys
import pandas as pd
import taskvec.pipelines.results as results

results.list_runs = lambda *_args, **_kwargs: pd.DataFrame()
results.list_other_work = lambda *_args, **_kwargs: []
sys.argv = ["taskvec", "runs", sys.argv[1]]
from taskvec.cli import main
try:
    main()
finally:  # as a scheduler's signal that comes while the interpreter shuts down
    os.kill(os.getpid(), signal.SIGTERM)
"""


@pytest.mark.parametrize(("script", "code"), [(TERMINATED_TWICE, 143), (TERMINATED_AFTER_ITS_WORK, 0)])
def test_a_second_sigterm_or_one_after_the_work_does_not_change_how_the_command_ends(tmp_path, script, code):
    """Two SIGTERMs printed a traceback from the interpreter's shutdown; one that came once the
    command had finished (its folder written, 'run folder: ...' said) made the finished job end
    'killed by signal 15'."""
    import os
    import subprocess
    import sys

    env = {key: value for key, value in os.environ.items() if key != "WORLD_SIZE"}
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, env=env, timeout=99
    )
    assert done.returncode == code, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr

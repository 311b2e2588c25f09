"""Who a process is in its launch comes from the launcher's environment: no launcher is one
process of its own (no process group, no claim record); a half-set environment is one line."""

from __future__ import annotations

import pytest

from taskvec.errors import ConfigError
from taskvec.pipelines import ranks


@pytest.fixture
def fresh(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    ranks.current.cache_clear()
    yield monkeypatch
    ranks.current.cache_clear()


def test_without_a_launcher_a_process_is_the_only_rank_and_claims_nothing(fresh, tmp_path):
    me = ranks.current()
    assert (me.rank, me.world, me.is_main, me.parallel) == (0, 1, True, False)
    assert me.claims(tmp_path / "units") is None
    assert list(me.each(tmp_path / "units", ["a", "b"])) == ["a", "b"]
    me.barrier()  # nothing to wait for
    assert not (tmp_path / "units").exists()


def test_a_world_size_without_the_rest_of_a_launchers_environment_is_one_line(fresh):
    fresh.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="MASTER_ADDR.*torchrun or accelerate launch"):
        ranks.current()


def test_every_option_of_the_launched_commands_passes_torchruns_own_parser():
    """torchrun parses the script's arguments too and refuses a prefix of its own options:
    ``analyze --run`` was "ambiguous option: --run could match --run-path, --run_path". Each
    option a launched command has, or another name for it, must get through."""
    import typer
    from torch.distributed.run import get_args_parser

    from taskvec.cli import app

    parser = get_args_parser()
    commands = typer.main.get_command(app).commands
    refused = {}
    for name in ("run", "reproduce", "analyze"):
        for param in commands[name].params:
            names = [opt for opt in param.opts if opt.startswith("--")]
            passing = []
            for option in names:
                try:
                    args = parser.parse_args(["--standalone", "-m", "taskvec", name, option, "x"])
                except SystemExit:
                    continue
                if args.training_script_args[-2:] == [option, "x"]:
                    passing.append(option)
            if names and not passing:
                refused[f"{name} {names}"] = "every name refused"
    assert not refused, refused


class _SecondRank(ranks.Ranks):
    """Rank 1 of two whose peer claimed every unit and whose barriers pass at once (the peer
    stands in the folder as what it left there)."""

    def barrier(self) -> None:
        pass

    def each(self, units, keys):
        return iter(())


def test_a_unit_another_rank_wrote_that_does_not_read_back_is_one_line_not_a_type_error(
    smollm2, tmp_path, monkeypatch
):
    """A rank reads back the units its peers wrote; one that is not there or damaged (a folder
    that ranks see differently) was None in the layer scores, a bare ``TypeError``."""
    from helpers.reliability import TINY, write_tiny_task

    from taskvec.errors import StorageError
    from taskvec.evaluation.protocol import ExperimentConfig
    from taskvec.pipelines.evaluate import evaluate

    monkeypatch.setattr("taskvec.pipelines.evaluate.current_ranks", lambda: _SecondRank(rank=1, world=2))
    config = ExperimentConfig.create(**{**TINY, "tasks": [str(write_tiny_task(tmp_path / "data"))]})
    with pytest.raises(StorageError, match=r"tiny_food__seed1\.json does not read back on this rank"):
        evaluate(config, tmp_path / "run", adapter=smollm2, show_progress=False)


def _launched(fresh, rank: int, local_rank: int) -> None:
    """This process as ``rank`` of four (two machines of two), its process group set up."""
    from functools import cache

    for name, value in (("WORLD_SIZE", "4"), ("RANK", rank), ("LOCAL_RANK", local_rank)):
        fresh.setenv(name, str(value))
    me = cache(lambda: ranks.Ranks(rank, 4, "launch"))
    fresh.setattr(ranks, "current", me)
    for pipeline in ("evaluate", "analyze", "reproduce"):
        fresh.setattr(f"taskvec.pipelines.{pipeline}.current_ranks", me)


def test_under_a_launcher_an_input_error_is_said_once_a_machine_and_other_errors_name_their_rank(fresh):
    """Eight ranks printed eight identical lines for one mistyped task. Each machine's first rank
    says an input error (every rank of a machine reads the same options and files); any other
    error, which may be one rank's own, is said by that rank with its number."""
    from typer.testing import CliRunner

    from taskvec import cli
    from taskvec.cli import app
    from taskvec.errors import StorageError

    runner = CliRunner()
    said = {}

    def stopped_by_the_launcher(seconds):  # the first rank exited, so the launcher stops this one
        assert seconds == cli.PEER_GRACE_S
        raise SystemExit(-15)

    fresh.setattr(cli.time, "sleep", stopped_by_the_launcher)
    for rank, local_rank in ((0, 0), (1, 1), (2, 0), (3, 1)):
        _launched(fresh, rank, local_rank)
        result = runner.invoke(app, ["run", "--tasks", "no_such_task"])
        assert result.exit_code == (-15 if local_rank else 2), result.output
        said[rank] = result.output
    assert said[0].startswith("error: unknown task 'no_such_task'")
    assert said[2].startswith("error: (rank 2) unknown task 'no_such_task'")  # the second machine's
    assert said[1] == said[3] == ""
    # a rank whose first rank did not meet the error (still running after the grace) says it
    fresh.setattr(cli.time, "sleep", lambda seconds: None)
    result = runner.invoke(app, ["run", "--tasks", "no_such_task"])
    assert result.exit_code == 2 and result.output.startswith("error: (rank 3) unknown task 'no_such_task'")

    def full_disk(*_args, **_kwargs):
        raise StorageError("no space left on device writing /x: free some space")

    fresh.setattr("taskvec.pipelines.evaluate.evaluate", full_disk)
    result = runner.invoke(app, ["run", "--tasks", "country_capital", "--out", "x"])
    assert result.exit_code == 2
    assert result.output.startswith("error: (rank 3) no space left on device")


def test_a_launch_without_its_launchers_environment_is_said_once_a_machine(fresh):
    fresh.setenv("WORLD_SIZE", "2")
    fresh.setenv("LOCAL_RANK", "1")
    from typer.testing import CliRunner

    from taskvec.cli import app

    fresh.setattr("taskvec.cli.time.sleep", lambda seconds: (_ for _ in ()).throw(SystemExit(-15)))
    result = CliRunner().invoke(app, ["run", "--tasks", "country_capital"])
    assert (result.exit_code, result.output) == (-15, "")
    fresh.setenv("LOCAL_RANK", "0")
    result = CliRunner().invoke(app, ["run", "--tasks", "country_capital"])
    assert result.output.startswith("error: WORLD_SIZE is 2, but RANK, MASTER_ADDR, MASTER_PORT")


def test_once_a_rank_claims_units_an_input_error_is_said_by_the_rank_that_met_it(fresh, tmp_path):
    """Claiming units parts the ranks' ways: a bad image of a unit on rank 1 is rank 1's alone,
    and must not go unsaid."""
    from typer.testing import CliRunner

    from taskvec.cli import app

    _launched(fresh, 1, 1)
    fresh.setattr(ranks, "_PARTED", __import__("threading").Event())
    ranks.Ranks(1, 4, "launch").each(tmp_path / "units", ["a"])
    assert ranks.ranks_parted()
    result = CliRunner().invoke(app, ["run", "--tasks", "no_such_task"])
    assert result.exit_code == 2
    assert result.output.startswith("error: (rank 1) unknown task 'no_such_task'")

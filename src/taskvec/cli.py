"""The ``taskvec`` command: run the paper's protocol, list models and tasks, build data."""

from __future__ import annotations

import difflib
import importlib.util
import json
import math
import os
import re
import signal
import sys
import time
import warnings
from contextlib import suppress
from pathlib import Path
from typing import Annotated

import click
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from taskvec.config import DEFAULT_MODEL, DEFAULT_VLM, validated
from taskvec.errors import (
    ConfigError,
    ImageError,
    LayerError,
    MemoryBudgetError,
    ModelSpecError,
    TaskFileError,
    TaskvecError,
    TemplateError,
    VectorMismatchError,
    storage_error,
    warning_message,
)
from taskvec.pipelines.progress import LogConsole
from taskvec.tasks.images import DEFAULT_STYLE


class _Commands(TyperGroup):
    """Any command's ``TaskvecError`` (bad input or set-up), or a write that fails for lack of
    space or permission, becomes one red line and exit code 2, never a traceback; bugs still show
    theirs. Options that take several values take them as users type them (``--tasks a b``,
    ``--tasks a,b``, ``--seed 1,2,3``, repeated flags); help pages show no type of a flag."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except TaskvecError as error:
            _fail(error)
        except OSError as error:  # a full disk, a read-only or forbidden place: not a bug
            if storage_error(error) is error:
                raise
            _fail(storage_error(error))
        except RuntimeError as error:  # a GPU that ran out of memory is the machine's limit, not a bug
            out_of_memory = _out_of_memory(error, getattr(_RESOLVED.get(_COMMAND), "name", ""))
            if out_of_memory is None:
                raise
            _fail(out_of_memory)
        except KeyboardInterrupt as stopped:
            command = getattr(_RESOLVED.get(_COMMAND), "name", "")
            again = " run the same command again to resume where it stopped" if command in _RESUMABLE else ""
            said = "terminated (SIGTERM)" if isinstance(stopped, Terminated) else "interrupted"
            console.print(f"[bold yellow]{said}[/]{';' if again else ''}{again}", highlight=False)
            raise typer.Exit(code=143 if isinstance(stopped, Terminated) else 130) from None

    def format_help(self, ctx, formatter):
        _quiet_flags(self, ctx)  # the group's own --help, as its commands'
        return super().format_help(ctx, formatter)

    def resolve_command(self, ctx, args):
        name, command, rest = super().resolve_command(ctx, args)
        if command is not None and not isinstance(command, click.Group):
            _RESOLVED[_COMMAND] = command
            _quiet_flags(command, ctx)
            rest = spread_lists(command, rest)
            takes_a_file = any("--config" in p.opts for p in command.params)
            options_file = _options_file(rest) if takes_a_file else None  # else click names the flag
            if options_file is not None:  # the file's values are defaults: flags override them
                ctx.default_map = {**(ctx.default_map or {}), name: read_options_file(command, options_file)}
        return name, command, rest


_COMMAND = "command"
_RESUMABLE = ("run", "reproduce", "analyze")  # commands whose finished work a rerun keeps


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler ending a job, ``kill``, a launcher stopping its ranks), raised where
    the command is, as Ctrl-C is: the folder's lock is let go and what a half-done step left is
    tidied, the finished work kept, and the command says so. It ended the process silently."""


def _terminate(_signal: int, _frame) -> None:
    # once: a second SIGTERM (a scheduler's, or a kill typed twice) met the tidying of the first
    # and printed a traceback from the interpreter's shutdown
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated()


_RESOLVED: dict = {}  # the command being run, for error messages that name its flags
_NUMBER = re.compile(r"-\d+(\.\d*)?")


def _options(command) -> list:
    return [p for p in command.params if p.param_type_name == "option"]


def _quiet_flags(command, ctx) -> None:
    """Flags (``--quick``, ``--help``) take no value: the help shows none (not ``<bool>``); options
    that take several show ``<int> ...``, not ``<list[int]>``."""
    for param in command.get_params(ctx):
        if param.param_type_name == "option" and param.is_flag:
            param.metavar = ""
        elif param.param_type_name == "option" and param.multiple and param.metavar is None:
            shown = param.display_type_rich(ctx) or ""
            param.metavar = re.sub(r"^<list\[(.*)\]>$", r"<\1> ...", shown)


def spread_lists(command, args: list[str]) -> list[str]:
    """``args`` with every value of a multiple option as its own ``--flag value``: the values that
    follow such a flag up to the next option (``--tasks a b``) and comma-separated ones
    (``--tasks a,b``, ``--seed 1,2,3``; a path that exists is never split). The command's required
    arguments are not swallowed: ``verify --task-file t.json RUN`` leaves ``RUN`` its argument."""
    multiple = {opt for p in _options(command) if p.multiple for opt in p.opts}
    valued = {opt for p in _options(command) if not p.is_flag and not p.multiple for opt in p.opts}
    required = sum(1 for p in command.params if p.param_type_name == "argument" and p.required)
    spread: list[str] = []
    extras: list[int] = []  # where a value beyond a multiple option's first sits in ``spread``
    positional = 0  # the command's arguments given
    current: str | None = None  # the multiple option whose values are being read
    awaiting = False  # its flag was the last token (its first value is next)
    value_next = False  # a single-value option's flag was the last token
    for index, token in enumerate(args):
        if token == "--":
            return _reclaimed(spread, extras, required - positional) + args[index:]
        if token.startswith("-") and not _NUMBER.fullmatch(token):
            flag, equals, value = token.partition("=")
            current, awaiting = (flag, not equals) if flag in multiple else (None, False)
            value_next = flag in valued and not equals
            if current and equals:
                spread += [v for piece in _pieces(value) for v in (flag, piece)]
            else:
                spread.append(token)
            continue
        if current is None:
            positional += not value_next
            value_next = False
            spread.append(token)
            continue
        pieces = _pieces(token)
        if awaiting and pieces:
            spread.append(pieces.pop(0))
        for piece in pieces:
            extras.append(len(spread) + 1)
            spread += [current, piece]
        awaiting = False
    return _reclaimed(spread, extras, required - positional)


def _reclaimed(spread: list[str], extras: list[int], missing: int) -> list[str]:
    """``spread`` with its last ``missing`` extra values of multiple options given back to the
    command's arguments (their flag dropped; click reads an argument anywhere)."""
    if missing <= 0 or not extras:
        return spread
    dropped = {position - 1 for position in extras[-missing:]}
    return [token for position, token in enumerate(spread) if position not in dropped]


def _options_file(args: list[str]) -> Path | None:
    """The file named by ``--config`` among ``args`` (the last one given), if any."""
    found = None
    for index, token in enumerate(args):
        if token == "--":
            break
        if token == "--config" and index + 1 < len(args):
            found = args[index + 1]
        elif token.startswith("--config="):
            found = token.removeprefix("--config=")
    return Path(found) if found else None


def read_options_file(command, path: Path) -> dict:
    """A YAML file of a command's options (keys as flags or as names: ``n-examples``,
    ``n_examples``, ``seed`` / ``seeds``) as click defaults; a list option also takes one value or
    a comma-separated string. Unknown keys are refused with the closest option named."""
    import difflib

    import yaml

    if not path.is_file():
        raise ConfigError(f"--config {path}: no such file")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        problem = " ".join(str(error).split())
        raise ConfigError(f"--config {path}: cannot read it as YAML ({problem})") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"--config {path}: expected a mapping of option: value, not {type(raw).__name__}")
    names = {}
    for param in _options(command):
        if param.name in ("options_file", "help") or param.name.startswith("_"):
            continue
        keys = {param.name}
        if param.multiple:  # seed / seeds, layer / layers
            keys |= {f"{param.name}s", param.name.removesuffix("s")}
        keys |= {opt.lstrip("-").replace("-", "_") for opt in param.opts if opt.startswith("--")}
        names.update(dict.fromkeys(keys, param))
    defaults, given_as = {}, {}
    for key, value in raw.items():
        param = names.get(str(key).lstrip("-").replace("-", "_"))
        if param is None:
            close = difflib.get_close_matches(str(key), sorted(names), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"--config {path}: unknown option {key!r}{hint}; see taskvec {command.name} --help"
            )
        if param.name in given_as:  # `seed: [1, 2]` and `seeds: [3]`: the last won, silently
            raise ConfigError(
                f"--config {path}: {given_as[param.name]!r} and {key!r} are one option; give it once"
            )
        given_as[param.name] = key
        if isinstance(value, dict):  # read as its text ("unknown template \"{'name': ...}\"")
            what = ""
            if param.name == "template":
                what = " (a template's fields go in a JSON file: give its path)"
            raise ConfigError(
                f"--config {path}: {key!r} is given a mapping; it takes a value{what}; see taskvec "
                f"{command.name} --help"
            )
        if param.multiple:
            values = value if isinstance(value, list) else [value]
            value = [piece for v in values for piece in (_pieces(v) if isinstance(v, str) else [v])]
        defaults[param.name] = value
    return defaults


def _pieces(value: str) -> list[str]:
    if "," not in value or Path(value).exists():
        return [value]
    return [piece.strip() for piece in value.split(",") if piece.strip()]


def _flag_names(error: Exception, message: str) -> str:
    """A config error's fields (``test_layers``) named as the command's flags (``--test-layers``)."""
    fields = error.fields if isinstance(error, ConfigError) else ()
    command = _RESOLVED.get(_COMMAND)
    if not fields or command is None:
        return message
    flags = {}
    for param in _options(command):
        if param.opts:
            flag = max(param.opts, key=len)
            flags[param.name] = flags[f"{param.name}s"] = flag
    for field, _ in fields:
        head = field.split(".")[0]
        if head in flags:
            message = re.sub(rf"(?<![\w-]){re.escape(head)}(?=[.:])", flags[head], message)
    return message


app = typer.Typer(
    cls=_Commands, add_completion=False, no_args_is_help=True, help=__doc__, rich_markup_mode="markdown"
)
data_app = typer.Typer(
    cls=_Commands, no_args_is_help=True, help="Build the image suite (the pictures of the built-in tasks)."
)
app.add_typer(data_app, name="data")
console = LogConsole(stderr=True)


def _print_version(asked: bool) -> None:
    if asked:
        from taskvec import __version__

        typer.echo(f"taskvec {__version__}")
        raise typer.Exit


@app.callback()
def _shared_options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="print taskvec's version and exit", callback=_print_version, is_eager=True
        ),
    ] = False,
) -> None:
    """(The options every command shares.)"""


def _show_warning(
    message: Warning | str, category: type[Warning], filename: str, lineno: int, file=None, line=None
) -> None:
    """A warning as one line a researcher reads (``warning: ...``), not Python's file, line and
    source line: taskvec's warnings name what they are about themselves."""
    text = " ".join(str(message).split())
    console.print(f"[yellow]warning:[/] {escape(text)}", highlight=False, soft_wrap=True)


def _out_of_memory(error: RuntimeError, command: str) -> TaskvecError | None:
    """torch's out-of-memory error (dozens of lines of allocator advice) as one line: what ran out
    (its first sentences), what lowers the need, and that the finished work is kept. Only torch
    raises it, so where torch was never imported (click's exit after ``--help`` is a RuntimeError
    too) it is not imported here: help pages stay quick."""
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(error, torch.OutOfMemoryError):
        return None
    what = ". ".join(" ".join(str(error).split()).split(". ")[:3]).rstrip(".")
    cures = ["a lower --memory-budget-mb (smaller batches)"] if command in _BUDGETED else []
    cures += ["--dtype bfloat16"] if command in _WITH_DTYPE else []
    cures += ["a GPU with more free memory"]
    cure = ", ".join(cures[:-1]) + (" or " if len(cures) > 1 else "") + cures[-1]
    kept = ""
    if command in _RESUMABLE:
        kept = (
            "; the units finished so far are kept: the same command resumes them, also with a lower "
            "--memory-budget-mb (another --dtype is another run)"
        )
    return MemoryBudgetError(f"out of GPU memory ({what}): use {cure}{kept}")


_BUDGETED = ("run", "reproduce", "analyze")  # commands with --memory-budget-mb
_WITH_DTYPE = ("run", "reproduce", "analyze", "verify")


#: bad options, files, templates, model names and layers: every rank of a machine reads the same
#: ones, so before the ranks part ways each such error is the same on all of them
_SAME_ON_EVERY_RANK = (
    ConfigError,
    ValidationError,
    FileNotFoundError,
    TaskFileError,
    ImageError,
    TemplateError,
    ModelSpecError,
    LayerError,
    VectorMismatchError,
)
#: how long another rank of a machine, meeting such an error, leaves its first rank to say it: the
#: launcher stops the other ranks once one exits, so a rank that exited silently at once could
#: have the first rank, a model load behind, stopped before it said anything
PEER_GRACE_S = 120.0


def _fail(error: Exception) -> None:
    """Print ``error`` as a single red line (no wrapping, no markup from the message) and exit 2.

    Under a launcher, an error every rank of a machine meets alike is said once, by the machine's
    first rank (8 ranks printed 8 identical lines): another rank waits for the launcher to stop it
    once the first rank exits, and says the error itself, with its rank, only if still running
    after ``PEER_GRACE_S`` (the first rank did not meet it). Any other error names its rank."""
    from taskvec.pipelines.ranks import place_in_launch, ranks_parted

    rank, local_rank = place_in_launch()
    if local_rank and isinstance(error, _SAME_ON_EVERY_RANK) and not ranks_parted():
        time.sleep(PEER_GRACE_S)
    message = _flag_names(error, " ".join(str(error).split()))
    where = f"(rank {rank}) " if rank else ""
    console.print(f"[bold red]error:[/] {where}{escape(message)}", soft_wrap=True, highlight=False)
    raise typer.Exit(code=2)


def _template_option(template: str | None):
    """A template name, or the content of a template JSON file (a bad file is a TemplateError)."""
    if not template or not template.lower().endswith(".json"):
        return template
    if not Path(template).is_file():
        raise TemplateError(f"template file {template}: no such file (or use a built-in: paper, spaced)")
    try:
        value = json.loads(Path(template).read_text(encoding="utf-8-sig"))  # a BOM, as task files
    except (OSError, ValueError) as error:
        raise TemplateError(f"template file {template}: cannot read it as JSON ({error})") from None
    if not isinstance(value, dict):
        raise TemplateError(
            f"template file {template}: holds a JSON {type(value).__name__}, not an object of "
            "template fields (name, output_prefix, ...)"
        )
    from taskvec.prompts.template import PromptTemplate

    fields = list(PromptTemplate.model_fields)
    unknown = [key for key in value if key not in fields]
    if unknown:  # named by the file and the fields it may hold, not as "--template.answer_prefx"
        near = difflib.get_close_matches(unknown[0], fields, n=1)
        guess = f"; did you mean {near[0]!r}?" if near else ""
        raise TemplateError(
            f"template file {template}: {unknown[0]!r} is not a template field{guess} (its fields: "
            f"{', '.join(fields)})"
        )
    return value


@app.command()
def run(
    model: Annotated[str, typer.Option(help="named model, hub id or local folder")] = DEFAULT_MODEL,
    tasks: Annotated[list[str] | None, typer.Option("--tasks", "-t", help=TASKS_HELP)] = None,
    spec: Annotated[str, typer.Option(help="text-icl | image-icl | instruction | ensemble")] = "text-icl",
    query: Annotated[str, typer.Option(help="text | image")] = "text",
    style: Annotated[
        str | None, typer.Option(help=f"image style for image inputs (default: {DEFAULT_STYLE})")
    ] = None,
    template: Annotated[
        str, typer.Option(help="paper (default: the paper's protocol, comparable) | spaced | a template JSON")
    ] = "paper",
    n_examples: Annotated[int, typer.Option(help="demonstrations per prompt")] = 5,
    answer_tokens: Annotated[
        int, typer.Option(help="tokens of each greedy answer (whole_label and exact read them)")
    ] = 6,
    seeds: Annotated[list[int] | None, typer.Option("--seed", help=SEEDS_HELP)] = None,
    layers: Annotated[list[int] | None, typer.Option("--layer", help="restrict the sweep")] = None,
    selection_metric: Annotated[
        str, typer.Option(help="what the layer is chosen by: paper | paper_ci (case-insensitive) | strict")
    ] = "paper",
    layer_selection: Annotated[str, typer.Option(help=LAYER_SELECTION_HELP)] = "shared",
    test_layers: Annotated[
        str, typer.Option(help="all: test xPatch at every layer | chosen: at the val-chosen layer")
    ] = "all",
    memory_budget_mb: Annotated[float | None, typer.Option(help=MEMORY_BUDGET_HELP)] = None,
    out: Annotated[Path | None, typer.Option(help="run folder (default: `runs/<model>-<spec>-...`)")] = None,
    dtype: Annotated[str, typer.Option(help=DTYPE_HELP)] = "float32",
    device: Annotated[str | None, typer.Option(help=DEVICE_HELP)] = None,
    device_map: Annotated[str | None, typer.Option(help=DEVICE_MAP_HELP)] = None,
    verbose: Annotated[bool, typer.Option("--verbose", help=VERBOSE_HELP)] = False,
    options_file: Annotated[
        Path | None, typer.Option("--config", help="a YAML file of these options; flags override it")
    ] = None,
) -> None:
    """Score task vectors on tasks: xPatch and xBase against No Context and majority.

    Extract task vectors, sweep layers on val, and report No Context / majority / xBase / xPatch
    on test, mean ± std over seeds, into one run folder (an interrupted run resumes)."""
    from taskvec.evaluation.protocol import ExperimentConfig
    from taskvec.pipelines.evaluate import evaluate
    from taskvec.pipelines.progress import announce
    from taskvec.report.tables import (
        COLLAPSE_RULE,
        NOT_JUDGED_RULE,
        collapsed_cells,
        differences,
        differences_cells,
        format_summary,
        selection_text,
        spread_phrase,
        unjudged_cells,
        write_run_report,
    )
    from taskvec.tasks.registry import load_tasks, resolve_task_names

    try:
        template_value = _template_option(template)
        config = ExperimentConfig.create(
            model=model,
            tasks=resolve_task_names(tasks or ["all"]),
            spec=spec,
            query=query,
            style=style or DEFAULT_STYLE,
            template=template_value,
            n_examples=n_examples,
            answer_tokens=answer_tokens,
            seeds=seeds or [1, 2, 3],
            layers=layers,
            selection_metric=selection_metric,
            layer_selection=layer_selection,
            test_layers=test_layers,
            memory_budget_mb=memory_budget_mb,
        )
        options = _load_options(dtype, device, device_map)  # a bad device fails before anything loads
        if style is not None or verbose:
            recorded = config.as_run(load_tasks(config.tasks))  # as config.json will record it
            if style is not None and recorded.style is None and _main_rank():
                announce(
                    f"note: --style {style} changes nothing here: this run draws no picture in a style "
                    "(text examples and queries, or the tasks' own picture files), and records none"
                )
            if verbose and _main_rank():  # a text run draws no picture, so no style; once a launch
                console.print_json(recorded.model_dump_json())
        result = evaluate(config, out, load_options=options)
    except (TaskvecError, ValidationError, FileNotFoundError) as error:
        _fail(error)
        return
    if not _main_rank():
        return  # under a launcher, rank 0 writes the report and prints the tables once
    announce("writing tables and plots ...")
    write_run_report(result)
    collapsed, unjudged = collapsed_cells(result.predictions), unjudged_cells(result.predictions)
    layers = sorted(set(result.task_layers.values())) or [result.best_layer]
    where = f"layer {layers[0]}" if len(layers) == 1 else "layer per task"
    for metric in ("paper", "whole_label", "strict", "exact"):
        table = result.summary(metric)
        if table.empty:
            continue
        _print_frame(format_summary(table, collapsed, unjudged), f"{metric} (test, {where})")
    console.print(f"cells: {spread_phrase(len(config.seeds))}", highlight=False)
    found = differences(result.predictions)
    if len(found):
        title = "xPatch minus each method on the same test items (95% interval over the items)"
        _print_frame(differences_cells(found), title, rows="comparison")
    console.print(re.sub(r"[*`]", "", selection_text(result)), highlight=False)
    if collapsed:
        console.print(COLLAPSE_RULE, highlight=False)
    if unjudged:
        console.print(NOT_JUDGED_RULE, highlight=False)
    if result.warnings:  # said as they came, maybe in an earlier launch; here again, by the numbers
        console.print(f"{len(result.warnings)} warning(s) about this run's inputs, recorded in results.json:")
        for text in result.warnings:
            _show_warning(warning_message(text), UserWarning, "", 0)
    console.print(f"run folder: [bold]{result.folder.root}[/]")


LAYER_SELECTION_HELP = (
    "shared (default, the paper's protocol): one layer for all tasks, the best of their mean val "
    "curve | per-task: each task's own best val layer"
)


VERBOSE_HELP = "print the resolved configuration first (it is always in the folder's config.json)"
DTYPE_HELP = "weights dtype: float32 | bfloat16 | float16 (other numerics get their own run identity)"
SEEDS_HELP = "seeds, e.g. --seed 1 2 3 (the default)"
TASKS_HELP = "built-in names, 'all' or task files (default: all six built-in tasks)"
DEVICE_HELP = "where the model computes: cpu | cuda | cuda:N (default: the CPU)"
DEVICE_MAP_HELP = "accelerate placement for HF models instead of --device, e.g. auto"
MEMORY_BUDGET_HELP = (
    "MB one batch may take (default: sized once the model loads: 1024 on a CPU, most of a GPU's free memory)"
)


def _load_options(dtype: str, device: str | None, device_map: str | None):
    """Load options, checked now: an unknown dtype or a device this torch cannot use is one line
    before any model loads."""
    from taskvec.models.registry import LoadOptions

    options = LoadOptions(dtype=dtype, device=device, device_map=device_map)
    options.torch_dtype()
    options.torch_device()
    return options


def _print_frame(frame, title: str, justify: str = "right", rows: str = "task") -> None:
    """Tasks (or ``rows``) as rows; cells justified right (numbers) unless told otherwise (decoded text)."""
    table = Table(title=title)
    table.add_column(rows)
    for column in frame.columns:
        table.add_column(str(column), justify=justify)
    for index, row in frame.iterrows():
        table.add_row(str(index), *[str(v) for v in row])
    _print_table(table)


def _print_table(table: Table) -> None:
    """Print on stdout; into a file or a pipe at the table's natural width, since nothing there
    asks for 80 columns and a wrapped ``0.33 ±`` / ``0.02`` cell reads badly in a log."""
    out = Console()
    unbounded = out.options.update(width=10_000)
    natural = Measurement.get(out, unbounded, table).maximum
    if table.title is not None and not out.is_terminal:  # a title wider than its table wrapped to
        # the table's width (grep found half of it): the table is made as wide as its title
        title = Text.from_markup(table.title) if isinstance(table.title, str) else table.title
        table.min_width = max(table.min_width or 0, title.cell_len)
        natural = max(natural, table.min_width)
    if not out.is_terminal:
        out = Console(width=max(out.width, natural))
    elif natural > out.width:  # squeezed, rich would cut cells to "0.0…" and headers to "que…"
        _print_rows(out, table)
        return
    out.print(table)


def _print_rows(out: Console, table: Table) -> None:
    """A table too wide for the terminal, one row at a time: its first cell, then each other
    column's name and value, wrapped at the terminal's width; nothing is cut."""

    if table.title:
        out.print(f"[italic]{table.title}[/]")
    columns = [(str(column.header), list(column.cells)) for column in table.columns]
    for index in range(table.row_count):
        first, *rest = [(name, str(cells[index])) for name, cells in columns]
        out.print(f"[bold]{escape(first[1])}[/]")
        line, width = [], 2
        for name, value in rest:
            field = len(name) + len(value) + 3  # "  name value"
            if not value:
                continue
            if line and width + field > out.width:  # a field is never split
                out.print("  " + "  ".join(line))
                line, width = [], 2
            line.append(f"[dim]{escape(name)}[/] {escape(value)}")
            width += field
        if line:
            out.print("  " + "  ".join(line))


@app.command()
def models() -> None:
    """List the named models and the model families (HF `model_type`) with an adapter."""
    from taskvec.models.registry import FAMILIES, NAMED_MODELS

    table = Table(title="named models")
    table.add_column("name")
    table.add_column("description")
    for named in NAMED_MODELS.values():
        table.add_row(named.name, named.description)
    _print_table(table)
    vision = sorted(t for t, family in FAMILIES.items() if family.adapter_class.supports_images)
    text = sorted(t for t in FAMILIES if t not in vision)
    Console().print("families, text (model_type): " + ", ".join(text))
    Console().print("families, vision-language (model_type): " + ", ".join(vision))


@app.command("tasks")
def list_tasks() -> None:
    """List the built-in tasks with their instruction and split sizes."""
    from taskvec.tasks.registry import BUILTIN_TASKS, load_task

    table = Table(title="built-in tasks")
    for column in ("task", "instruction", "val", "test", "domain"):
        table.add_column(column, justify="right" if column in ("val", "test") else "left")
    for name in BUILTIN_TASKS:
        task = load_task(name)
        table.add_row(name, task.instruction, str(len(task.val)), str(len(task.test)), str(task.domain))
    _print_table(table)


@app.command("prompts")
def show_prompts(
    task: Annotated[str, typer.Argument(help="a built-in task's name or a task file")],
    spec: Annotated[str, typer.Option(help="text-icl | image-icl | instruction")] = "text-icl",
    query: Annotated[str, typer.Option(help="text | image")] = "text",
    template: Annotated[
        str, typer.Option(help="paper (default) | spaced | a template JSON (docs/task-files.md)")
    ] = "paper",
    style: Annotated[
        str | None, typer.Option(help=f"image style for image inputs (default: {DEFAULT_STYLE})")
    ] = None,
    seed: Annotated[int, typer.Option(help="the seed that draws the demonstrations")] = 1,
    n_examples: Annotated[int, typer.Option(help="demonstrations per prompt")] = 5,
    item: Annotated[int, typer.Option(help="which test item (0: the first)")] = 0,
) -> None:
    """Show the prompts a run writes for one test item, as the model reads them; no model loads.

    The xBase prompt, the bare query whose last token xPatch patches, and one of the prompts the
    task vector is read from (at its last token): what `taskvec run` with the same options builds."""
    from taskvec.evaluation.protocol import ExperimentConfig, UnitPrompts
    from taskvec.pipelines.evaluate import validate_inputs
    from taskvec.tasks.registry import resolve_task_names

    try:
        if spec not in ("text-icl", "image-icl", "instruction"):
            raise ConfigError(f"--spec {spec!r}: prompts shows text-icl, image-icl or instruction")
        config = ExperimentConfig.create(
            tasks=resolve_task_names([task]),
            spec=spec,
            query=query,
            style=style or DEFAULT_STYLE,
            template=_template_option(template),
            n_examples=n_examples,
            seeds=[seed],
        )
        (loaded,) = validate_inputs(config)
        if not 0 <= item < len(loaded.test):
            raise ConfigError(
                f"--item {item}: task {loaded.name!r} has {len(loaded.test)} test items (0 to "
                f"{len(loaded.test) - 1})"
            )
    except (TaskvecError, ValidationError, FileNotFoundError) as error:
        _fail(error)
        return
    unit = UnitPrompts(loaded, config, seed)
    test_item = loaded.test[item]
    console.print(
        f"task {loaded.name}, {spec} -> {query} queries, template {config.template.name!r}, seed {seed}, "
        f"test item {item} ({test_item.input!r} -> {test_item.label!r})",
        highlight=False,
    )
    extraction = unit.instruction if spec == "instruction" else unit.extraction[0]
    read_from = "the instruction" if spec == "instruction" else f"1 of {len(unit.extraction)} averaged"
    shown = (
        ("xBase prompt", unit.test_base[item]),
        ("query (No Context; xPatch patches its last token)", unit.test_queries[item]),
        (f"task-vector prompt ({read_from}; read at its last token)", extraction),
    )
    for title, prompt in shown:
        console.rule(title, align="left")
        console.print(escape(_prompt_text(prompt)), highlight=False)
        console.print(f"[dim]ends with {_prompt_text(prompt)[-12:]!r}[/]", highlight=False)


def _prompt_text(prompt) -> str:
    """A prompt's segments as text, each picture as ``<image>``."""
    return "".join(segment if isinstance(segment, str) else "<image>" for segment in prompt)


@app.command("runs")
def list_run_folders(
    root: Annotated[Path, typer.Argument(help="a folder of run folders, or one run folder")] = Path("runs"),
    metric: Annotated[
        str, typer.Option(help="the score shown: paper | whole_label | paper_ci | strict | exact")
    ] = "paper",
) -> None:
    """List the run folders under a folder: state, what ran, and each method's test score.

    A reproduction's runs are listed too, and under the table each reproduction's and analysis's
    own state; a stopped run resumes with the command that started it."""
    from taskvec.pipelines.results import LISTED_METHODS, list_other_work, list_runs

    try:
        frame = list_runs(root, metric)
    except TaskvecError as error:
        _fail(error)
        return
    if frame.empty:
        console.print(f"no taskvec run folder under {root}")
    else:
        table = Table(title=f"runs under {root}: test scores by {metric}, the mean over tasks")
        for column in frame.columns:
            table.add_column(column, justify="right" if column in LISTED_METHODS else "left")
        for row in frame.itertuples(index=False):
            table.add_row(*[_cell(value) for value in row])
        _print_table(table)
    for where, kind, state in list_other_work(root):  # their runs (if any) do not say how they stand
        console.print(f"{kind} folder {escape(where)}: {state}", highlight=False)


@app.command("compare")
def compare_run_folders(
    run_a: Annotated[Path, typer.Argument(help="a finished run folder", show_default=False, metavar="RUN_A")],
    run_b: Annotated[Path, typer.Argument(help="another one", show_default=False, metavar="RUN_B")],
    metric: Annotated[
        list[str] | None,
        typer.Option(help="the scores compared (default: paper and whole_label)", show_default=False),
    ] = None,
) -> None:
    """Compare two runs: B minus A, method by method, on the test items both answered.

    Each item's score is averaged over its run's seeds and the items are paired, so the 95%
    interval is over the items (two runs of the same tasks answer the same items); a task is
    compared only where both runs read the same task data."""
    from taskvec.pipelines.compare import COMPARED_METRICS, compare_runs
    from taskvec.report.tables import METHOD_NAMES, difference_cell
    from taskvec.storage.markdown import fixed

    found = compare_runs(run_a, run_b, metric or COMPARED_METRICS)
    for name, folder, layers in zip("AB", (run_a, run_b), found.attrs["layers"], strict=True):
        read = set(layers.values())
        at = (
            f"layer {read.pop()}"
            if len(read) == 1
            else ", ".join(f"{t} {layer}" for t, layer in layers.items())
        )
        said = f"{name}: {escape(str(folder))} ({_what_ran(folder)}; xPatch at {at})"
        console.print(said, highlight=False)
    for each, rows in found.groupby("metric", sort=False):
        table = Table(title=f"{each}: B minus A on the same test items (95% interval over the items)")
        for column, justify in (("method", "left"), ("A", "right"), ("B", "right"), ("B - A", "right")):
            table.add_column(column, justify=justify)
        table.add_column("items", justify="right")
        for row in rows.itertuples():
            table.add_row(
                METHOD_NAMES.get(row.method, row.method),
                fixed(row.a),
                fixed(row.b),
                difference_cell(row),
                str(row.items),
            )
        _print_table(table)
    console.print(f"tasks compared: {', '.join(found.attrs['tasks'])}", highlight=False)
    for task, why in found.attrs["left_out"].items():
        console.print(f"left out: {task} ({why})", highlight=False)


def _what_ran(folder: Path) -> str:
    """A run in a few words, as config.json records it: model, spec -> query, template, style."""
    from taskvec.storage.run_folder import RunFolder

    experiment = RunFolder(folder).config().get("experiment", {})
    template = experiment.get("template")
    template = template.get("name") if isinstance(template, dict) else template
    said = [str(experiment.get("model")), f"{experiment.get('spec')} -> {experiment.get('query')}"]
    said += [f"template {template}"] + ([f"style {experiment['style']}"] if experiment.get("style") else [])
    said += [f"layer selection {experiment.get('layer_selection', 'shared')}"]
    return ", ".join(said)


def _cell(value) -> str:
    """A listed value as shown: a score to two places (as the run's own tables show it), nothing
    for a missing one (a count's is ``pd.NA``)."""
    import pandas as pd

    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    from taskvec.storage.markdown import fixed

    return fixed(value) if isinstance(value, float) else str(value)


@app.command()
def analyze(
    run: Annotated[
        Path | None,
        typer.Option(
            "--run",
            "--from-run",
            help="a `taskvec run` folder: its settings and layer (--from-run under torchrun, whose own "
            "parser takes --run for its --run-path)",
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(help=f"named model, hub id or local folder (default: the run's, else {DEFAULT_MODEL})"),
    ] = None,
    tasks: Annotated[list[str] | None, typer.Option("--tasks", "-t", help=TASKS_HELP)] = None,
    spec: Annotated[
        list[str] | None, typer.Option("--spec", help="text-icl | image-icl | instruction (default: all)")
    ] = None,
    template: Annotated[
        str | None,
        typer.Option(
            help="paper | spaced (default, as reproduce: small models' tokens begin with a space) | a "
            "template JSON"
        ),
    ] = None,
    style: Annotated[
        str | None,
        typer.Option(help=f"image style for image inputs (default: the run's, else {DEFAULT_STYLE})"),
    ] = None,
    n_examples: Annotated[
        int | None, typer.Option(help="demonstrations per prompt (default: the run's, else 5)")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="demonstration sampling seed (default: the run's first, else 1)")
    ] = None,
    prompts: Annotated[int | None, typer.Option(help="test prompts per task and spec (default: 100)")] = None,
    lens_prompts: Annotated[
        int | None, typer.Option(help="of them, through the full logit lens (default: 25)")
    ] = None,
    extraction_prompts: Annotated[
        int | None, typer.Option(help="val prompts per vector (default: all)")
    ] = None,
    layer: Annotated[
        int | None,
        typer.Option(
            help="layer of decodings/similarity/embeddings (default: the run's chosen layer, else the "
            "task phase's peak)"
        ),
    ] = None,
    decode_layer: Annotated[
        list[int] | None,
        typer.Option(
            "--decode-layer", help="top-1 layers (default: a quarter, half, the layer and the last)"
        ),
    ] = None,
    top_k: Annotated[int | None, typer.Option(help="tokens per task-vector decoding (default: 5)")] = None,
    token_sets: Annotated[Path | None, typer.Option(help="token-set JSON (input/task/answer words)")] = None,
    embedding: Annotated[
        list[str] | None,
        typer.Option("--embedding", help="the maps drawn: tsne | pca | umap (default: tsne pca)"),
    ] = None,
    memory_budget_mb: Annotated[float | None, typer.Option(help=MEMORY_BUDGET_HELP)] = None,
    out: Annotated[Path | None, typer.Option(help="folder (default: `<run>/analysis` or `runs/...`)")] = None,
    dtype: Annotated[
        str | None,
        typer.Option(help=f"{DTYPE_HELP} (default: the --run's, else float32)", show_default=False),
    ] = None,
    device: Annotated[str | None, typer.Option(help=DEVICE_HELP)] = None,
    device_map: Annotated[str | None, typer.Option(help=DEVICE_MAP_HELP)] = None,
) -> None:
    """Decode and compare task vectors: logit lens, similarity, embedding plots.

    Logit-lens phases, top-1 and task-vector decodings, similarity and embedding plots: PNG plots,
    CSV + Markdown tables and summary.md in one folder."""
    from taskvec.pipelines.analyze import run_analysis
    from taskvec.pipelines.verify import recorded_dtype
    from taskvec.report.analysis import write_analysis_report
    from taskvec.tasks.registry import resolve_task_names

    try:
        template_value = _template_option(template)
        dtype = dtype or (recorded_dtype(run) if run is not None else "float32")
        result = run_analysis(
            run,
            out,
            load_options=_load_options(dtype, device, device_map),
            model=model,
            tasks=resolve_task_names(tasks) if tasks else None,
            specs=spec,
            template=template_value,
            style=style,
            n_examples=n_examples,
            seed=seed,
            prompts=prompts,
            lens_prompts=lens_prompts,
            extraction_prompts=extraction_prompts,
            layer=layer,
            decode_layers=decode_layer,
            top_k=top_k,
            token_sets=str(token_sets) if token_sets else None,
            embeddings=embedding,
            memory_budget_mb=memory_budget_mb,
        )
    except (TaskvecError, ValidationError, FileNotFoundError) as error:
        _fail(error)
        return
    if not _main_rank():
        return  # under a launcher, rank 0 writes the summary and prints the tables once
    # a complete folder read back has its summary and plots already
    summary = write_analysis_report(result) if result.analysis is not None else result.summary_path
    _print_frame(result.tables["decodings_table"], f"task-vector decodings, layer {result.layer}", "left")
    console.print(f"analysis folder: [bold]{result.folder.root}[/] ({summary.name})")


@app.command()
def verify(
    run: Annotated[
        Path,
        typer.Argument(
            help="a `taskvec run` folder, or a folder of runs (a reproduction)",
            show_default=False,
            metavar="RUN",
        ),
    ],
    model: Annotated[
        str | None, typer.Option(help="named model, hub id or folder (default: each run's own)")
    ] = None,
    task_files: Annotated[
        list[Path] | None, typer.Option("--task-file", help="a run task's file that moved (matched by name)")
    ] = None,
    dtype: Annotated[str | None, typer.Option(help="weights dtype (default: the run's)")] = None,
    device: Annotated[str | None, typer.Option(help=DEVICE_HELP)] = None,
    device_map: Annotated[str | None, typer.Option(help=DEVICE_MAP_HELP)] = None,
) -> None:
    """Re-derive every task vector of a run from its folder, the model and the task files.

    Builds each vector's prompts again from the demonstrations the vector records, extracts it
    again and compares it with the saved one (bitwise, and within a stated tolerance); a task file
    or picture that changed since the run is refused. Exit code 1 if a vector differs."""
    from taskvec.models.registry import load_model
    from taskvec.pipelines.verify import recorded_dtype, verify_runs

    options = None  # each run's model in the run's dtype
    if dtype or device or device_map or model:  # one model for all, in the dtype told or the run's
        options = _load_options(dtype or recorded_dtype(run), device, device_map)
    adapter = load_model(model, options) if model else None
    results = verify_runs(run, adapter, task_files=task_files or [], load_options=options, show_progress=True)
    table = Table(title=f"re-derived vectors of {run}")
    columns = ["run"] if len(results) > 1 else []
    columns += [
        "task",
        "seed",
        "spec",
        "bitwise equal",
        "max |diff|",
        "rel. error",
        "within tolerance",
        "prompts",
    ]
    for column in columns:
        table.add_column(column)
    for result in results:
        where = [str(result.folder.relative_to(run))] if len(results) > 1 else []
        for check in result.checks:
            prompts = "rebuilt" if check.prompts_rebuilt else "DIFFER"
            prompts += "" if check.sampling_agrees else " (not today's draw)"
            prompts = "saved file DAMAGED" if check.damaged else prompts
            equal, close = "yes" if check.equal else "no", "yes" if check.close else "NO"
            table.add_row(
                *where,
                check.task,
                str(check.seed),
                check.spec,
                equal,
                f"{check.max_abs_diff:.3g}",
                f"{check.rel_l2:.2g}",
                close,
                prompts,
            )
    _print_table(table)
    verdicts = Console()  # on stdout with the table: `taskvec verify RUN > log` keeps the verdict
    for result in results:
        prefix = f"{result.folder.relative_to(run)}: " if len(results) > 1 else ""
        verdicts.print(prefix + result.summary(), highlight=False, soft_wrap=True)
        for check in result.checks:
            if check.damaged:
                verdicts.print(f"damaged: {check.damaged}", highlight=False, soft_wrap=True)
    if not all(result.ok for result in results):
        raise typer.Exit(code=1)


@app.command()
def reproduce(
    model: Annotated[
        str, typer.Option(help="a vision-language model: named, hub id or folder")
    ] = DEFAULT_VLM,
    llm: Annotated[
        str | None, typer.Option(help="its base LLM for Table 4 (default: the model's own)")
    ] = None,
    template: Annotated[
        str | None,
        typer.Option(
            help="paper | spaced (default: spaced for the embedded VLM, whose tokens begin with a space; "
            "the paper's for any other model)",
            show_default=False,
        ),
    ] = None,
    styles: Annotated[
        list[str] | None, typer.Option("--style", help="image styles: a training one, then held-out")
    ] = None,
    seeds: Annotated[list[int] | None, typer.Option("--seed", help=SEEDS_HELP)] = None,
    tasks: Annotated[list[str] | None, typer.Option("--tasks", "-t", help=TASKS_HELP)] = None,
    quick: Annotated[bool, typer.Option(help="a few-minute smoke run: 1 seed, few items and layers")] = False,
    layer_selection: Annotated[str, typer.Option(help=LAYER_SELECTION_HELP)] = "shared",
    memory_budget_mb: Annotated[float | None, typer.Option(help=MEMORY_BUDGET_HELP)] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="report folder (default `runs/reproduce-<model>`, `-quick` after it for --quick)"),
    ] = None,
    dtype: Annotated[str, typer.Option(help=DTYPE_HELP)] = "float32",
    device: Annotated[str | None, typer.Option(help=DEVICE_HELP)] = None,
    device_map: Annotated[str | None, typer.Option(help=DEVICE_MAP_HELP)] = None,
    verbose: Annotated[bool, typer.Option("--verbose", help=VERBOSE_HELP)] = False,
) -> None:
    """Run every experiment of the paper and write the report beside its numbers.

    Tables 3, 4, 10; Figs. 8, 9; the analyses. Writes report.md / report.html with our numbers
    beside the paper's; an interrupted run resumes."""
    from taskvec.pipelines.progress import announce
    from taskvec.pipelines.ranks import current as current_ranks
    from taskvec.pipelines.reproduce import ReproduceConfig, finished_reproduction
    from taskvec.pipelines.reproduce import reproduce as run_reproduction
    from taskvec.report.reproduce import write_report
    from taskvec.tasks.registry import resolve_task_names

    load_options = _load_options(dtype, device, device_map)

    options = {"styles": styles, "seeds": seeds, "tasks": resolve_task_names(tasks) if tasks else None}
    config = ReproduceConfig.create(
        model=model,
        llm=llm,
        template=template,
        quick=quick,
        layer_selection=layer_selection,
        memory_budget_mb=memory_budget_mb,
        **{k: v for k, v in options.items() if v},
    )
    if verbose and _main_rank():  # once a launch, as the report
        console.print_json(config.model_dump_json())
    if not current_ranks().parallel:  # the same command again: its report, no model loaded
        report = finished_reproduction(config, out, load_options)
        if report is not None:
            announce(f"{report.parent} holds this reproduction, complete: read back, nothing computed")
            console.print(f"report: [bold]{report}[/]")
            return
    result = run_reproduction(config, out, load_options=load_options)
    if _main_rank():  # under a launcher, rank 0 writes the report
        console.print(f"report: [bold]{write_report(result)}[/]")


def _main_rank() -> bool:
    """Rank 0 of a launch (torchrun, accelerate launch), or the only process."""
    from taskvec.pipelines.ranks import current

    return current().is_main


@app.command("report")
def report_command(
    folder: Annotated[
        Path,
        typer.Argument(
            help="a reproduction folder (taskvec reproduce --out)", show_default=False, metavar="FOLDER"
        ),
    ],
    plots: Annotated[
        bool, typer.Option("--plots", help="draw the figures again from the tables first")
    ] = False,
    compare_with: Annotated[
        Path | None,
        typer.Option(
            "--compare-with",
            metavar="FOLDER",
            help="another reproduction of a variant of the model (the embedded VLM with a frozen and with a "
            "LoRA-tuned LLM), shown side by side; recorded in report_context.json",
        ),
    ] = None,
) -> None:
    """Write a reproduction's report.md and report.html again from its files; no model loads.

    A copied or committed reproduction re-renders with the current code (docs/reproduction.md)."""
    from taskvec.report.reproduce import compare_with as compare
    from taskvec.report.reproduce import render_report

    if compare_with is not None:
        compare(folder, compare_with)
    Console().print(str(render_report(folder, plots=plots)), highlight=False, soft_wrap=True)


@app.command()
def align(
    stage: Annotated[
        str, typer.Option(help="all | recogniser | projector | lora (projector + LoRA on the LLM)")
    ] = "all",
    backbone: Annotated[
        list[str] | None,
        typer.Option(
            "--backbone",
            help="smollm2 | gemma3 (repeatable; default both, and for --stage lora the backbones whose "
            "tuned variant ships: gemma3)",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="fixes sampling, augmentation and initialisation")] = 0,
    epochs: Annotated[float | None, typer.Option(help="stage 1 epochs (default: the shipped recipe)")] = None,
    steps: Annotated[int | None, typer.Option(help="stage 2 steps (default: the shipped recipe)")] = None,
    out: Annotated[Path | None, typer.Option(help="weights folder (default: the package's own)")] = None,
    device: Annotated[str | None, typer.Option(help=DEVICE_HELP)] = None,
) -> None:
    """Train the embedded VLM's recogniser and projector (its weights ship with taskvec).

    Stage 1 fine-tunes EfficientNet-Lite0 into a recogniser of the image suite's entities (names
    only), stage 2 trains the projector against each frozen LLM. ``--stage lora`` (not part of
    ``all``) then tunes the projector together with LoRA adapters on the LLM (the weights of
    ``embedded-vlm-<backbone>-lora``)."""
    from taskvec.models.embedded.load import BACKBONES, TUNED_BACKBONES
    from taskvec.models.embedded.weights import WEIGHTS_DIR
    from taskvec.pipelines.align import (
        LoraStageConfig,
        ProjectorConfig,
        RecogniserConfig,
        align_lora,
        align_projector,
        align_recogniser,
    )

    folder = out or WEIGHTS_DIR
    load_options = _load_options("float32", device, None)  # a bad device fails before any training
    if stage not in ("all", "recogniser", "projector", "lora"):
        raise ConfigError(f"unknown stage {stage!r}; use all, recogniser, projector or lora")
    keys = backbone or list(TUNED_BACKBONES if stage == "lora" else BACKBONES)
    for key in keys:
        if key not in BACKBONES:
            raise ConfigError(f"unknown backbone {key!r}; known: {sorted(BACKBONES)}")
    if epochs is not None and stage not in ("all", "recogniser"):
        raise ConfigError(f"--epochs sets stage 1 (the recogniser); --stage {stage} does not train it")
    if steps is not None and stage == "recogniser":
        raise ConfigError("--steps sets stage 2 (projector, lora); --stage recogniser does not train it")
    if backbone and stage == "recogniser":
        raise ConfigError(
            "--backbone picks the LLMs stage 2 trains on; --stage recogniser trains the one recogniser "
            "all backbones share"
        )
    # every stage's options are checked before the first trains (a bad --steps failed after stage 1)
    given = {"seed": seed} | ({"epochs": epochs} if epochs is not None else {})
    recogniser = validated(RecogniserConfig, "align options", **given)
    given = {"seed": seed} | ({"steps": steps} if steps is not None else {})
    projector = validated(ProjectorConfig, "align options", **given)
    lora = validated(LoraStageConfig, "align options", **given)
    if stage in ("all", "recogniser"):
        info = align_recogniser(recogniser, folder, device or "cpu")
        console.print(f"recogniser: {info['train_seconds']} s, top-1 {info['classifier_top1']}")
    if stage in ("all", "projector"):
        for key in keys:
            info = align_projector(key, projector, folder, load_options)
            console.print(f"projector {key}: {info['train_seconds']} s, {info['recognition_strict']}")
    if stage == "lora":
        for key in keys:
            info = align_lora(key, lora, folder, load_options)
            console.print(f"lora {key}: {info['train_seconds']} s, {info['recognition_strict']}")


#: the image-suite builder: a script of the repository (it needs npm and apt), not of the package
SUITE_BUILDER = Path(__file__).resolve().parents[2] / "scripts" / "suite_build.py"


@data_app.command("build")
def data_build(
    workdir: Annotated[Path, typer.Option(help="where npm packages are fetched")] = Path("build/suite-src"),
    out: Annotated[Path | None, typer.Option(help="suite folder (default: the package's own)")] = None,
) -> None:
    """Fetch the emoji and flag packages from npm and render the image suite (needs npm and a
    checkout of the repository: it runs `scripts/suite_build.py`)."""
    if not SUITE_BUILDER.is_file():
        raise ConfigError(
            "the image-suite builder is not part of the installed package: it is "
            "scripts/suite_build.py in the taskvec repository. Clone the repository, install it "
            "(`pip install -e .`), then run `taskvec data build` there, or "
            "`python scripts/suite_build.py --out <suite folder>`; it needs npm, apt-get (or "
            "--noto-font), resvg-py and fonttools. The installed package already ships the suite."
        )
    _suite_builder().main_build(workdir, out)


def _suite_builder():
    """``scripts/suite_build.py`` as an imported module (``runpy`` left its functions without a
    module, so the render workers could not be handed them: every build failed)."""
    name = "taskvec_suite_build"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, SUITE_BUILDER)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # before it runs: pickle finds its functions by this name
        spec.loader.exec_module(module)
    return sys.modules[name]


def main() -> None:
    """The ``taskvec`` command: the app, its warnings shown as one line each."""
    warnings.showwarning = _show_warning
    if not sys.stderr.isatty():  # a job's log: the libraries' tqdm bars redraw with \r, one line each
        for variable in ("TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS"):
            os.environ.setdefault(variable, "1")
    # a launcher's rank (WORLD_SIZE read as ``pipelines.ranks`` reads it) keeps the default and
    # ends at once, as it did: its peers may wait in a collective that a handler would never leave
    from taskvec.pipelines.ranks import launch_size

    try:
        one_process = launch_size() == 1
    except ConfigError as error:  # a WORLD_SIZE no launcher set: one line, as every refusal
        with suppress(typer.Exit):
            _fail(error)
        sys.exit(2)
    if not one_process:
        app(prog_name="taskvec")
        return
    signal.signal(signal.SIGTERM, _terminate)
    try:
        app(prog_name="taskvec")
    finally:  # the command's work is done: a SIGTERM now has nothing to stop (the interpreter's
        # shutdown restores the default action, and a finished job ended "killed by signal 15")
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


if __name__ == "__main__":
    main()

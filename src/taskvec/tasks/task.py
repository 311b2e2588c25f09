"""Tasks: named input -> label mappings with validation and test splits.

A task is data, not code: a JSON file with a declared schema (see ``TaskFile``). The same
``Task`` object serves text queries (``item.input``) and image queries (``item.entity`` keys
the image suite), so every experiment reads one kind of object.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import json
import re
import unicodedata
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator

from taskvec.errors import TaskFileError
from taskvec.storage.run_folder import write_atomic

Split = Literal["val", "test"]
SPLITS: tuple[Split, ...] = ("val", "test")


class ItemRecord(BaseModel):
    """One row of a task file as written on disk."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    id: str = Field(min_length=1)
    input: str = Field(min_length=1)
    output: str = Field(min_length=1)
    aliases: list[str] = Field(default_factory=list)
    #: an image-suite entity id, or an image file path (relative to the task file)
    entity: str | None = Field(default=None, validation_alias=AliasChoices("entity", "image"))

    @field_validator("id", mode="before")
    @classmethod
    def _whole_number_as_text(cls, value: object) -> object:
        """Datasets often number their rows (``"id": 7``): kept as the text ``"7"``. A bool or a
        fraction is no one's id and stays refused."""
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            raise ValueError(f"must be text or a whole number, not {value!r}")
        return value

    @field_validator("input", "output")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if _is_blank(value):
            raise ValueError("must not be blank (it has no visible character)")
        return value

    @field_validator("output")
    @classmethod
    def _no_hidden_character(cls, value: str) -> str:
        return _answer_without_hidden_characters(value)

    @field_validator("aliases")
    @classmethod
    def _aliases_not_blank(cls, value: list[str]) -> list[str]:
        if any(_is_blank(alias) for alias in value):
            raise ValueError("aliases must not be blank (no visible character)")
        return [_answer_without_hidden_characters(alias) for alias in value]


#: characters that show nothing inside a word (zero-width space, word joiner, BOM, soft hyphen):
#: pasted into an answer they make it one no model writes, so the item could never score
HIDDEN_CHARACTERS = {
    "\u200b": "U+200B zero-width space",
    "\u2060": "U+2060 word joiner",
    "\ufeff": "U+FEFF byte-order mark",
    "\u00ad": "U+00AD soft hyphen",
}


def _answer_without_hidden_characters(answer: str) -> str:
    hidden = [name for char, name in HIDDEN_CHARACTERS.items() if char in answer]
    if hidden:
        raise ValueError(f"{answer!r} holds {', '.join(hidden)}, which no model writes; delete it")
    if "\n" in answer or "\r" in answer:  # an answer is read up to its first line break
        raise ValueError(
            f"{answer!r} holds a line break; an answer is one line (a model's ends at its first)"
        )
    return answer


def _stripped(text: object) -> object:
    """``text`` without the whitespace around it; a blank text or anything else as it is, for
    validation to name."""
    return text.strip() or text if isinstance(text, str) else text


def _is_blank(text: str) -> bool:
    """Only spaces, control or format characters (e.g. a zero-width space): nothing to show or score."""
    return all(char.isspace() or unicodedata.category(char) in ("Cc", "Cf") for char in text)


class TaskFile(BaseModel):
    """The project's task format: one JSON file holding both splits."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1)
    instruction: str = Field(min_length=1)
    description: str = ""
    domain: str | None = None
    val: list[ItemRecord]
    test: list[ItemRecord]

    @field_validator("name", "instruction")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if _is_blank(value):
            raise ValueError("must not be blank (it has no visible character)")
        return value


@dataclass(frozen=True)
class Item:
    """A query and its accepted answers; ``entity`` names the item's picture, if any."""

    id: str
    input: str
    label: str
    aliases: tuple[str, ...] = ()
    entity: str | None = None

    def __post_init__(self) -> None:
        """An item as a task file would give it back, so a task built in Python keeps its
        fingerprint through ``Task.save`` and loading: a whole-number id as its text, one alias
        given as a string as one alias (not its letters, each of which would then count as a right
        answer), the text without spaces around it (the template puts the space before an answer;
        ``" Paris"`` would make ``"A:  Paris"``), a picture file by its absolute place."""
        if isinstance(self.id, int) and not isinstance(self.id, bool):
            object.__setattr__(self, "id", str(self.id))
        aliases = (self.aliases,) if isinstance(self.aliases, str) else tuple(self.aliases)
        object.__setattr__(self, "aliases", tuple(_stripped(alias) for alias in aliases))
        object.__setattr__(self, "input", _stripped(self.input))
        object.__setattr__(self, "label", _stripped(self.label))
        if self.entity:
            object.__setattr__(self, "entity", _absolute_if_a_file(self.entity))

    @property
    def answers(self) -> tuple[str, ...]:
        """The label first, then every accepted alias."""
        return (self.label, *self.aliases)


#: the row of every results table that holds the mean over tasks, so no task may be called so
AVERAGE = "average"
#: what a task's name may be: it names the run folder's unit and vector files, so a ``/``, ``\\``
#: or ``..`` in it would write them outside the folder
#: the most bytes (UTF-8) of a task's name: its vector file's name adds up to about 60 to it, and
#: a file's name ends at 255 bytes (a 250-letter name failed after its whole unit was computed)
NAME_BYTES = 120
NAME_RULE = (
    "a task's name may hold only letters, digits, spaces, '_', '-' and '.', may not begin with "
    f"'.' or hold '..', and may be at most {NAME_BYTES} bytes long (it names the run folder's unit "
    "and vector files)"
)


def _is_safe_file_name(name: str) -> bool:
    """Whether ``name`` can name a file inside a run folder as it is (``NAME_RULE``)."""
    allowed = all(char.isalnum() or char in "_-. " for char in name)
    short = len(name.encode("utf-8")) <= NAME_BYTES
    return bool(name) and allowed and short and not name.startswith(".") and ".." not in name


@dataclass(frozen=True)
class Task:
    """A task with its instruction and its validation/test splits."""

    name: str
    instruction: str
    val: tuple[Item, ...]
    test: tuple[Item, ...]
    domain: str | None = None
    description: str = ""
    source: str = ""
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def split(self, split: Split) -> tuple[Item, ...]:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        return self.val if split == "val" else self.test

    def save(self, path: str | Path) -> Path:
        """Write the task as the project's JSON (both splits; pictures by absolute path or suite
        entity), which every command reads back as this very task (the same fingerprint): how a
        task built in Python becomes one a run can record, resume and verify."""
        record = {
            "name": self.name,
            "instruction": self.instruction,
            **({"description": self.description} if self.description else {}),
            **({"domain": self.domain} if self.domain else {}),
            **{split: [_item_record(item) for item in self.split(split)] for split in SPLITS},
            **self.extra,
        }
        path = Path(path)
        if path.suffix.lower() != ".json":  # loading reads a file by its suffix: .csv as rows
            raise TaskFileError(
                f"task {self.name!r} cannot be saved as {path.name}: Task.save writes the project's "
                "JSON, so the file's name must end in .json"
            )
        try:  # what loading would refuse (a blank input, a hidden character), refused before writing
            TaskFile.model_validate(record)
        except ValidationError as error:
            raise TaskFileError(f"task {self.name!r} cannot be saved: {_describe(error)}") from error
        return write_atomic(path, json.dumps(record, indent=2, ensure_ascii=False) + "\n")

    def fingerprint(self) -> str:
        """Hash of everything that affects results (instruction, items, splits). An item's own
        picture counts by its name, not its place: a project moved or copied elsewhere with its
        pictures is the same task (the absolute path made it another, and its runs another's)."""
        content = json.dumps(
            [self.name, self.instruction, [[_fingerprinted(i) for i in self.split(s)] for s in SPLITS]],
            sort_keys=True,
            default=list,
        )
        return hashlib.sha256(content.encode()).hexdigest()[:12]

    def __post_init__(self) -> None:
        # the instruction vector is read at its last token: a trailing space (or line break) typed
        # after "The capital:" moved it off the ":" (as an item's text, spaces around it drop)
        object.__setattr__(self, "instruction", self.instruction.strip())
        where = f"task {self.name!r}" + (f" ({self.source})" if self.source else "")
        if self.name.strip().casefold() == AVERAGE:
            raise TaskFileError(
                f"{where}: the name {AVERAGE!r} is the tables' row for the mean over tasks; rename the task"
            )
        if not _is_safe_file_name(self.name):
            raise TaskFileError(f"{where}: {NAME_RULE}; rename the task")
        for split in SPLITS:
            if not self.split(split):
                raise TaskFileError(f"{where}: the {split} split is empty; add items to {split!r}")
        seen: dict[str, str] = {}
        inputs: dict[str, str] = {}
        for split in SPLITS:
            for item in self.split(split):
                if item.id in seen:
                    raise TaskFileError(
                        f"{where}: item id {item.id!r} appears twice "
                        f"({seen[item.id]} and {split}); ids must be unique across splits"
                    )
                seen[item.id] = split
                # the same query twice would let a demonstration give the query's own answer away
                key = f"{item.input.strip().casefold()}\0{item.entity or ''}"
                if key in inputs:
                    raise TaskFileError(
                        f"{where}: items {inputs[key]!r} and {item.id!r} have the same input "
                        f"{item.input!r}; drop one (a query could be shown as its own demonstration)"
                    )
                inputs[key] = item.id


def _fingerprinted(item: Item) -> dict:
    """What of ``item`` its task's fingerprint hashes: its fields, a picture file by its name
    alone. Its bytes count where a run shows it (the run's picture hash, ``check_images``), not
    in a text-only run; its place not at all, so a project moved with its pictures is the same
    task."""
    fields = vars(item)
    if item.entity and Path(item.entity).is_absolute():
        fields = {**fields, "entity": f"picture {Path(item.entity).name}"}
    return fields


def _item_record(item: Item) -> dict:
    """An item as a task file holds it (``output`` for the label, ``image`` for its picture)."""
    record = {"id": item.id, "input": item.input, "output": item.label}
    if item.aliases:
        record["aliases"] = list(item.aliases)
    if item.entity:
        record["image"] = _absolute_if_a_file(item.entity)
    return record


#: what an item's own picture file may end in (a value naming an existing file counts too)
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp")


def is_picture_file(entity: str | None) -> bool:
    """Whether an item's ``image`` / ``entity`` value is a picture file of its own (an image
    suffix, or an existing file) rather than an image-suite entity a style draws."""
    return bool(entity) and (entity.lower().endswith(IMAGE_SUFFIXES) or Path(entity).is_file())


def _absolute_if_a_file(entity: str) -> str:
    """A picture file named relative to the working directory (as Python code names files) by its
    absolute place, since a task file's paths are read relative to the file; a suite entity as it is."""
    path = Path(entity).expanduser()
    if not path.is_absolute() and (entity.lower().endswith(IMAGE_SUFFIXES) or path.is_file()):
        return str(path.resolve())
    return entity


def _items(records: Sequence[ItemRecord], folder: Path | None = None) -> tuple[Item, ...]:
    return tuple(
        Item(
            id=r.id,
            input=r.input,
            label=r.output,
            aliases=tuple(r.aliases),
            entity=_resolve_image(r.entity, folder) if folder else r.entity,
        )
        for r in records
    )


#: what an item of a task file may say (``image`` and ``entity`` are one key)
ITEM_KEYS = "id, input, output, aliases, image"


def _describe(error: ValidationError) -> str:
    """Pydantic's problems as one line. A problem that several items share (a file written with
    another key than ``output`` gives three per item) is said once, with its first places and how
    many more, and a key an item may not have is answered with the keys it may."""
    places: dict[tuple[str, str], list[str]] = {}
    for problem in error.errors():
        loc = problem["loc"]
        message = problem["msg"]
        if problem["type"] == "extra_forbidden":
            message = f"not a key of an item (an item has {ITEM_KEYS})"
        elif problem["type"] == "value_error":  # our own validators' words, without pydantic's prefix
            message = str(problem["ctx"]["error"])
        # the same field of another item (val.3.id, test.0.id) is the same problem
        field = ".".join(str(p) for p in loc[2:]) if len(loc) > 2 and isinstance(loc[1], int) else ""
        places.setdefault((field or ".".join(str(p) for p in loc), message), []).append(
            ".".join(str(p) for p in loc)
        )
    parts = []
    for (_, message), where in places.items():
        more = f" and {len(where) - 2} more" if len(where) > 2 else ""
        parts.append(f"{', '.join(where[:2])}{more}: {message}")
    return "; ".join(parts)


def load_task_file(path: str | Path, instruction_of: Callable[[str], str | None] | None = None) -> Task:
    """Read a task in the project's JSON format (both splits in one file), or a JSON list of items
    (the paper's annotation shape: ``load_rows_task``, with ``instruction_of``)."""
    path = Path(path)
    if not path.is_file():
        raise TaskFileError(f"task file not found: {path}; check the path, or name a built-in task")
    try:
        raw = json.loads(path.read_text(encoding="utf-8-sig"))  # a byte-order mark is not the text
    except json.JSONDecodeError as error:
        raise TaskFileError(f"{path}: not valid JSON ({error})") from error
    except UnicodeDecodeError as error:
        raise TaskFileError(_not_utf8(path, error)) from None
    if isinstance(raw, list):  # the paper's annotation shape: a list of items, one split per file
        return load_rows_task(path, instruction_of)
    try:
        record = TaskFile.model_validate(raw)
    except ValidationError as error:
        raise TaskFileError(f"{path}: {_describe(error)}") from error
    extra = {k: v for k, v in raw.items() if k not in TaskFile.model_fields}
    return Task(
        name=record.name,
        instruction=record.instruction,
        description=record.description,
        domain=record.domain,
        val=_items(record.val, path.parent),
        test=_items(record.test, path.parent),
        source=str(path.resolve()),  # its place from anywhere (``taskvec verify`` finds it)
        extra=extra,
    )


def _not_utf8(path: Path, error: UnicodeDecodeError) -> str:
    return (
        f"{path}: not UTF-8 text (byte {error.object[error.start]:#04x} at offset {error.start}); "
        "save the file as UTF-8"
    )


#: one row of a row file and where it stands there ("line 5" of a JSONL or CSV file, "item 3" of a
#: JSON list, counted from 0), for messages a reader can find it by
Row = tuple[str, object]


def _read_rows(path: Path) -> list[Row]:
    """Rows of a paper-style JSON list, a JSONL file or a CSV with a header, each with its place."""
    if not path.is_file():
        raise TaskFileError(f"task file not found: {path}; check the path, or name a built-in task")
    try:
        text = path.read_text(encoding="utf-8-sig")  # spreadsheets begin their UTF-8 files with a BOM
    except UnicodeDecodeError as error:
        raise TaskFileError(_not_utf8(path, error)) from None
    suffix = path.suffix.lower()  # UPPER.CSV is a CSV
    if suffix == ".jsonl":
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    rows.append((f"line {number}", json.loads(line)))
                except json.JSONDecodeError as error:
                    raise TaskFileError(
                        f"{path}: line {number} is not valid JSON ({error.msg}, column {error.colno})"
                    ) from None
        _check_columns(path, rows)
        return rows
    if suffix == ".csv":
        rows = _csv_rows(path, text)
        _check_columns(path, rows)
        return rows
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as error:
        raise TaskFileError(f"{path}: cannot parse ({error})") from error
    if isinstance(rows, dict):  # some annotation files wrap the list
        rows = rows.get("data") or rows.get("items") or []
    if not isinstance(rows, list):
        raise TaskFileError(f"{path}: expected a list of items")
    rows = [(f"item {index}", row) for index, row in enumerate(rows)]
    _check_columns(path, rows)
    return rows


def _csv_rows(path: Path, text: str) -> list[Row]:
    """A CSV's rows; a quoted cell may hold a line break (a label that does is refused later by
    name, never read with the break dropped). A header that is one column with ``;`` or a tab in
    it is read with that separator (spreadsheets in many locales write ``;``), and a row whose
    cells are all empty (spreadsheets end their exports with such rows) is no row."""
    header = text.split("\n", 1)[0]
    delimiter = next((d for d in ",;\t" if "input" in (_column(cell) for cell in header.split(d))), ",")
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows = []
    try:
        if reader.fieldnames:  # `Split, Input, Output` as a spreadsheet types it is `split,input,output`
            reader.fieldnames = [_column(name) for name in reader.fieldnames]
        columns = [column for column in reader.fieldnames or [] if column.strip()]  # not spare empty ones
        repeated = next((column for column in columns if columns.count(column) > 1), None)
        if repeated is not None:  # csv would read the last one alone, silently
            raise TaskFileError(
                f"{path}: line 1: the column {repeated!r} appears twice in the header "
                f"({delimiter.join(reader.fieldnames or [])}); keep one"
            )
        for row in reader:
            cells = [*(value for key, value in row.items() if key is not None), *(row.get(None) or [])]
            if not any((cell or "").strip() for cell in cells):  # a spreadsheet's trailing ,,, rows
                continue
            if None in row:  # csv puts the cells past the header's under the key None
                raise TaskFileError(
                    f"{path}: line {reader.line_num} has {len(row[None])} more cell(s) than the header "
                    f"({', '.join(reader.fieldnames or [])}); quote a cell that holds a comma"
                )
            rows.append((f"line {reader.line_num}", row))
    except csv.Error as error:
        raise TaskFileError(f"{path}: line {reader.line_num}: cannot parse ({error})") from error
    return rows


def _column(name: str) -> str:
    """A header cell as the column it names: case and surrounding spaces aside."""
    return name.strip().lower()


def _resolve_image(entity: str | None, folder: Path) -> str | None:
    """Image paths in a task file are relative to that file (a value with an image suffix, or one
    that names a file there); suite entity ids stay as they are."""
    if not entity or Path(entity).is_absolute():
        return entity
    if entity.lower().endswith(IMAGE_SUFFIXES) or (folder / entity).is_file():
        return str((folder / entity).resolve())
    return entity


def _given_id(value: object, default: str) -> object:
    """A row's own id, or ``default`` where it has none (absent, or an empty CSV cell); ``0`` is an
    id, not a missing one."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    return value


#: the columns (keys) of a task file of rows that taskvec reads
ROW_COLUMNS = ("id", "input", "output", "aliases", "image", "entity", "split", "instruction")


def _check_columns(path: Path, rows: list[Row]) -> None:
    """A column taskvec does not read is refused where it looks like a misspelt one of its own (an
    ``alias`` column was dropped, and every alias with it: whole_label credited none), and said
    once otherwise (a dataset's own columns, ``notes``, ``source``)."""
    keys = {
        key for _, row in rows if isinstance(row, dict) for key in row if key is not None and str(key).strip()
    }
    unknown = sorted(keys - set(ROW_COLUMNS), key=str)  # a spreadsheet's spare empty columns are none
    for column in unknown:
        near = difflib.get_close_matches(str(column).casefold(), ROW_COLUMNS, n=1, cutoff=0.75)
        if near:
            raise TaskFileError(
                f"{path}: column {column!r} is not one taskvec reads; did you mean {near[0]!r}? rename it "
                f"(the columns read: {', '.join(ROW_COLUMNS)})"
            )
    if unknown:
        warnings.warn(
            f"{path}: column(s) {', '.join(map(repr, unknown))} not read (the columns read: "
            f"{', '.join(ROW_COLUMNS)})",
            stacklevel=4,
        )


def _records_from_rows(path: Path, rows: list[Row], split: str) -> list[ItemRecord]:
    records = []
    for index, (place, row) in enumerate(rows):
        where = f"{path}: {place} ({split} item {index})"
        if not isinstance(row, dict):
            raise TaskFileError(f"{where} is not an object")
        missing = [key for key in ("input", "output") if not str(row.get(key) or "").strip()]
        if missing:
            raise TaskFileError(f"{where} has no {' or '.join(missing)}")
        odd = [key for key in ("input", "output") if not isinstance(row[key], str)]
        if odd:  # as a task's JSON file says: 5 or true would be read as the text '5' or 'True'
            raise TaskFileError(f"{where}: {' and '.join(odd)} must be text, not {row[odd[0]]!r}; quote it")
        aliases = row.get("aliases")
        if aliases is None:
            aliases = []
        elif isinstance(aliases, str):  # a CSV cell: a|b
            aliases = [a for a in aliases.split("|") if a.strip()]
        elif not isinstance(aliases, list):  # as a task's JSON file says: {"Paris": 1} is not Paris
            raise TaskFileError(f"{where}: aliases must be a list of text (or 'a|b'), not {aliases!r}")
        pictures = {key: row[key] for key in ("entity", "image") if row.get(key) is not None}
        odd_picture = next((key for key, value in pictures.items() if not isinstance(value, str)), None)
        if odd_picture:
            raise TaskFileError(
                f"{where}: {odd_picture} must be text (an image file or a suite entity), "
                f"not {pictures[odd_picture]!r}"
            )
        try:
            records.append(
                ItemRecord(
                    id=_given_id(row.get("id"), f"{split}-{index}"),
                    input=row["input"],
                    output=row["output"],
                    aliases=aliases,
                    entity=_resolve_image(row.get("entity") or row.get("image"), path.parent),
                )
            )
        except ValidationError as error:
            raise TaskFileError(f"{where}: {_describe(error)}") from error
    return records


def load_split_files(val_path: str | Path, test_path: str | Path, name: str, instruction: str) -> Task:
    """Read a task from two files, one per split: paper-style JSON (items with
    ``input``/``output``/``image``), JSONL or CSV."""
    val_path, test_path = Path(val_path), Path(test_path)
    val = _records_from_rows(val_path, _read_rows(val_path), "val")
    test = _records_from_rows(test_path, _read_rows(test_path), "test")
    if not instruction.strip():
        raise TaskFileError(f"task {name!r}: instruction must not be blank")
    return Task(
        name=name,
        instruction=instruction,
        val=_items(val),
        test=_items(test),
        source=f"{val_path.resolve()} + {test_path.resolve()}",
    )


_PAPER_NAME = re.compile(r"^(?P<task>.+)_(?P<split>val|test)\.(?i:json|jsonl|csv)$")  # any case of suffix


def load_rows_task(path: str | Path, instruction_of: Callable[[str], str | None] | None = None) -> Task:
    """A task given as one file of rows (CSV, JSONL, or a JSON list in the paper's annotation shape).

    Its splits: a ``split`` column (``val`` / ``test``) in the file, or, for a file named like the
    paper's ``{task}_val.jsonl``, its sibling ``{task}_test.jsonl`` (either file may be given).
    Its instruction: an ``instruction`` column (the first row that has one), else
    ``instruction_of(task name)`` (the built-in task of that name)."""
    path = Path(path)
    rows = _read_rows(path)
    paper = _PAPER_NAME.match(path.name)
    name = paper["task"] if paper else path.stem
    if any(isinstance(row, dict) and "split" in row for _, row in rows):
        # a row that is no object has no split to file it under: refused, never silently left out
        odd_row = next(((place, row) for place, row in rows if not isinstance(row, dict)), None)
        if odd_row:
            raise TaskFileError(
                f"{path}: {odd_row[0]} is not an object ({json.dumps(odd_row[1], ensure_ascii=False)[:60]}); "
                'each row is one item, {"split": ..., "input": ..., "output": ...}'
            )
        split_of = {place: str(row.get("split", "")).strip() for place, row in rows}
        odd = sorted({f"{split!r} ({place})" for place, split in split_of.items() if split not in SPLITS})
        if odd:
            raise TaskFileError(f"{path}: split must be val or test, not {', '.join(odd)}")
        splits = {split: [(p, r) for p, r in rows if split_of.get(p) == split] for split in SPLITS}
        sources = {split: path for split in SPLITS}
    elif paper:
        sources = {}
        for split in SPLITS:
            suffixes = dict.fromkeys((path.suffix, ".json", ".jsonl", ".csv"))  # its own kind first
            files = [path.with_name(f"{name}_{split}{suffix}") for suffix in suffixes]
            found = next((file for file in files if file.is_file()), None)
            if found is None:
                raise TaskFileError(f"{path}: its {split} split {name}_{split}{path.suffix} is not beside it")
            sources[split] = found
        splits = {split: _read_rows(sources[split]) for split in SPLITS}
    else:
        raise TaskFileError(
            f"{path}: a task of rows needs its two splits: a 'split' column (val or test), or two "
            "files named <task>_val and <task>_test (see docs/task-files.md)"
        )
    # every row an object (a split file's other rows are refused by place) before any is read
    records = {split: _records_from_rows(sources[split], splits[split], split) for split in SPLITS}
    items = [row for split_rows in splits.values() for _, row in split_rows]
    given = next((text for row in items if (text := str(row.get("instruction") or "")).strip()), None)
    instruction = given or (instruction_of(name) if instruction_of else None)
    if not instruction:
        raise TaskFileError(
            f"{path}: task {name!r} has no instruction: add an 'instruction' column (or key) to a row, "
            "or write the task as one JSON file (docs/task-files.md)"
        )
    return Task(
        name=name,
        instruction=instruction,
        val=_items(records["val"]),
        test=_items(records["test"]),
        source=" + ".join(sorted({str(p.resolve()) for p in sources.values()})),
    )

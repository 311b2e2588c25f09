"""Which items built each prompt of a task vector, as the prompt showed them.

A vector's metadata holds one ``PromptSource`` per prompt it averages (``VectorMeta.sources``):
its query and demonstrations by split, index and id, with the text (or the picture: its file and
SHA-256) actually shown, and a digest of the rendered prompt. With the task files (checked by
fingerprint), the template and the model, that is enough to build the very same prompts again and
re-derive the vector (``taskvec.pipelines.verify``), whatever the sampling code does by then.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from taskvec.models.shared_work import prompts_digest
from taskvec.prompts.inputs import Modality, image_file
from taskvec.prompts.template import Prompt
from taskvec.tasks.images import SUITE_DIR
from taskvec.tasks.task import Item, Split, Task


class Picture(BaseModel):
    """A picture a prompt showed: its file (relative to ``root``) and the SHA-256 of its bytes."""

    model_config = ConfigDict(frozen=True)

    #: ``suite``: the image suite's folder (``images/noto/1f1eb-1f1f7.webp``); ``task file``: the
    #: folder of the task file that names it; ``absolute``: anywhere else (the path as it is)
    root: Literal["suite", "task file", "absolute"]
    path: str
    sha256: str


class Shown(BaseModel):
    """One item as a prompt showed it: where it is in its task (``split``, ``index``, ``id``),
    its text, and, where the prompt showed its picture instead, the picture."""

    model_config = ConfigDict(frozen=True)

    split: Split
    index: int
    id: str
    input: str
    label: str = ""  # the answer shown after it (demonstrations); "" for a query
    picture: Picture | None = None


class PromptSource(BaseModel):
    """What one prompt of a vector was built from: an ICL prompt's demonstrations and query, or
    an instruction; ``digest`` is ``prompts_digest`` of the rendered prompt (text and pixels)."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["icl", "instruction"]
    digest: str
    query: Shown | None = None
    demos: list[Shown] = []
    instruction: str = ""


def icl_sources(
    task: Task,
    queries: Sequence[Item],
    demos: Sequence[Sequence[Item]],
    prompts: Sequence[Prompt],
    modality: Modality,
    style: str | None,
) -> list[PromptSource]:
    """The sources of ICL prompts: ``prompts[i]`` shows ``demos[i]`` then ``queries[i]``, each as
    ``modality`` (pictures in ``style`` where they come from the suite)."""
    shown = _Shower(task, modality, style)
    return [
        PromptSource(
            kind="icl",
            digest=prompts_digest([prompt]),
            query=shown(query),
            demos=[shown(demo, with_label=True) for demo in prompt_demos],
        )
        for query, prompt_demos, prompt in zip(queries, demos, prompts, strict=True)
    ]


def instruction_source(instruction: str, prompt: Prompt) -> PromptSource:
    return PromptSource(kind="instruction", digest=prompts_digest([prompt]), instruction=instruction)


def picture_of(item: Item, style: str | None, task: Task) -> Picture:
    """The file an item's picture comes from (as ``image_file`` finds it) and its SHA-256."""
    path = image_file(item, style)
    return Picture(**_place(path, task), sha256=hashlib.sha256(path.read_bytes()).hexdigest())


def pictures_shown(tasks: Sequence[Task], style: str, splits: Sequence[Split]) -> dict:
    """The pictures a run shows of the items of ``splits``, for its ``config.json``: per task,
    per item id, the file (relative to the suite or the task file) and its SHA-256. ``style`` is
    the run's, recorded only where a suite picture is shown (``None`` where every picture is a
    task's own file, which no style changes)."""
    pictures = {
        task.name: {item.id: picture_of(item, style, task) for split in splits for item in task.split(split)}
        for task in tasks
    }
    uses_suite = any(p.root == "suite" for shown in pictures.values() for p in shown.values())
    return {
        "style": style if uses_suite else None,
        "tasks": {
            name: {item: p.model_dump(mode="json") for item, p in shown.items()}
            for name, shown in pictures.items()
        },
    }


def _place(path: Path, task: Task) -> dict:
    """``root`` and ``path`` of a picture: relative to the suite, or to its task file's folder."""
    resolved = path.resolve()
    if resolved.is_relative_to(SUITE_DIR.resolve()):
        return {"root": "suite", "path": resolved.relative_to(SUITE_DIR.resolve()).as_posix()}
    for source in task.source.split(" + ") if task.source else []:
        folder = Path(source).resolve().parent
        if resolved.is_relative_to(folder):
            return {"root": "task file", "path": resolved.relative_to(folder).as_posix()}
    return {"root": "absolute", "path": str(resolved)}


class _Shower:
    """``Shown`` records of one task's items, reading each picture file once."""

    def __init__(self, task: Task, modality: Modality, style: str | None):
        self.task, self.modality, self.style = task, modality, style
        self.places = {
            item.id: (split, index)
            for split in ("val", "test")
            for index, item in enumerate(task.split(split))
        }
        self.pictures: dict[str, Picture] = {}

    def __call__(self, item: Item, with_label: bool = False) -> Shown:
        split, index = self.places[item.id]
        picture = None
        if self.modality == "image":
            picture = self.pictures.get(item.id)
            if picture is None:
                picture = self.pictures[item.id] = picture_of(item, self.style, self.task)
        label = item.label if with_label else ""
        return Shown(split=split, index=index, id=item.id, input=item.input, label=label, picture=picture)

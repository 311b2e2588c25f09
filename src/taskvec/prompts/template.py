"""Prompt templates as data, and the prompts the protocol needs.

A prompt is a tuple of segments: text strings and PIL images. The model adapter turns the
segments into token ids (expanding each image into its placeholder tokens). Every prompt here
ends with the template's delimiter (the ":" of "A:"), but ``instruction_prompt``, the instruction
alone, which ends with its own last token (the built-in ones end in ":"); so the position the
protocol reads and patches is always the last token: no offsets to count.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from PIL import Image
from pydantic import BaseModel, ConfigDict, model_validator

from taskvec.errors import TemplateError

Segment = str | Image.Image
Prompt = tuple[Segment, ...]
Input = str | Image.Image


#: the built-in templates by name (filled below); another template may not take one's name
TEMPLATES: dict[str, PromptTemplate] = {}
#: what a template's name may hold (it names run folders)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
#: a format placeholder some other tool's templates use; taskvec's fields are literal text
_PLACEHOLDER = re.compile(r"\{(x|y|input|output|answer|label|question)\}", re.IGNORECASE)


class PromptTemplate(BaseModel):
    """How examples and queries are written.

    An example is ``{input_prefix}{x}{separator}{output_prefix}{answer_prefix}{y}{example_separator}``;
    a query stops after ``output_prefix``, whose last character is the delimiter.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    input_prefix: str = "Q:"
    separator: str = "\n"
    output_prefix: str = "A:"
    answer_prefix: str = ""
    example_separator: str = "\n\n"
    instruction_separator: str = "\n"
    delimiter: str = ":"

    @model_validator(mode="after")
    def _well_formed(self) -> PromptTemplate:
        """Refuse, in one line each, what would put the vector somewhere else than the paper's
        delimiter or mislabel the run: the rest of the protocol trusts the template."""
        if not _NAME.fullmatch(self.name):
            raise TemplateError(
                f"template name {self.name!r}: use letters, digits, '_', '-' and '.' (it names run folders)"
            )
        built_in = TEMPLATES.get(self.name)
        if built_in is not None and self != built_in:
            raise TemplateError(
                f"template {self.name!r} is built in, and this one differs from it; give yours "
                "another name (runs and reports name a template by it)"
            )
        for field, text in self.model_dump(exclude={"name"}).items():
            placeholder = _PLACEHOLDER.search(text)
            if placeholder:
                raise TemplateError(
                    f"template {self.name!r}: {field} {text!r} holds {placeholder.group()!r}, but a "
                    "template's fields are the literal text around the input and the answer (an "
                    "example is input_prefix, input, separator, output_prefix, answer_prefix, "
                    "answer, example_separator): leave the placeholder out"
                )
        if not self.delimiter:
            raise TemplateError(f"template {self.name!r}: the delimiter must not be empty")
        if self.delimiter != self.delimiter.rstrip():
            raise TemplateError(
                f"template {self.name!r}: the delimiter {self.delimiter!r} ends in white space, so "
                "the vector would be read at a bare space that no demonstration shows before its "
                "answer; end the delimiter (and output_prefix) at its last visible character and "
                "put the space in answer_prefix, as the built-in 'spaced' does"
            )
        if not self.output_prefix.endswith(self.delimiter):
            moved = (
                "; put a space after it in answer_prefix"
                if self.output_prefix.rstrip().endswith(self.delimiter)
                else ""
            )
            raise TemplateError(
                f"template {self.name!r}: output_prefix {self.output_prefix!r} must end with the "
                f"delimiter {self.delimiter!r}; the task vector is read at that token{moved}"
            )
        return self

    def example(self, x: Input, y: str) -> Prompt:
        """A filled demonstration, followed by the example separator."""
        return merge_text(
            (
                self.input_prefix,
                x,
                f"{self.separator}{self.output_prefix}{self.answer_prefix}{y}{self.example_separator}",
            )
        )

    def query(self, x: Input) -> Prompt:
        """A bare query, ending at the delimiter (the position that predicts the answer). Text runs
        are joined, so a text query tokenises as one string in every adapter."""
        return merge_text((self.input_prefix, x, f"{self.separator}{self.output_prefix}"))

    def examples(self, demos: Sequence[tuple[Input, str]]) -> Prompt:
        """The demonstrations alone: what an ICL prompt holds before its query."""
        segments: list[Segment] = []
        for demo_x, demo_y in demos:
            segments.extend(self.example(demo_x, demo_y))
        return merge_text(segments)

    def icl(self, demos: Sequence[tuple[Input, str]], x: Input) -> Prompt:
        """Demonstrations then the query: the xBase prompt and the vector-extraction prompt."""
        return merge_text([*self.examples(demos), *self.query(x)])

    def instruction_lead(self, instruction: str) -> Prompt:
        """The instruction and its separator: what an instruction-spec xBase prompt holds before
        its query (the same for every query, so it can run once for all)."""
        return merge_text([instruction, self.instruction_separator])

    def instructed(self, instruction: str, x: Input) -> Prompt:
        """An instruction followed by the query (the instruction-spec xBase)."""
        return merge_text([*self.instruction_lead(instruction), *self.query(x)])


def instruction_prompt(instruction: str) -> Prompt:
    """The instruction alone: its last token carries the instruction vector."""
    if not instruction.strip():
        raise TemplateError("instruction must not be blank")
    return (instruction,)


def merge_text(segments: Sequence[Segment]) -> Prompt:
    """Join adjacent strings so tokenisation sees one string per text run."""
    merged: list[Segment] = []
    for segment in segments:
        if isinstance(segment, str):
            if not segment:
                continue
            if merged and isinstance(merged[-1], str):
                merged[-1] = merged[-1] + segment
                continue
        merged.append(segment)
    return tuple(merged)


def majority_label(labels: Sequence[str]) -> str:
    """Most frequent label; ties go to the label that occurs first (deterministic)."""
    if not labels:
        raise ValueError("majority of no labels")
    counts = Counter(labels)
    best = max(counts.values())
    return next(label for label in labels if counts[label] == best)


PAPER = PromptTemplate(name="paper")
"""The paper's template: ``Q:{x}\\nA:{y}\\n\\n``, kept for comparability."""

SPACED = PromptTemplate(name="spaced", input_prefix="Q: ", answer_prefix=" ")
"""``Q: {x}\\nA: {y}``: recommended for small models, whose tokenisers prefer ``" Paris"``."""

TEMPLATES.update({t.name: t for t in (PAPER, SPACED)})


def get_template(name_or_template: str | PromptTemplate | dict) -> PromptTemplate:
    if isinstance(name_or_template, PromptTemplate):
        return name_or_template
    if isinstance(name_or_template, dict):
        return PromptTemplate.model_validate(name_or_template)
    if not isinstance(name_or_template, str):
        raise TemplateError(
            f"a template is a name ({sorted(TEMPLATES)}) or an object of template fields, not a "
            f"{type(name_or_template).__name__}"
        )
    try:
        return TEMPLATES[name_or_template]
    except KeyError:
        raise TemplateError(f"unknown template {name_or_template!r}; known: {sorted(TEMPLATES)}") from None

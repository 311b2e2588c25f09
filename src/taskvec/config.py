"""What every pipeline's options share, at the bottom of the package beside ``errors``.

``Options`` is the base of ``ExperimentConfig`` (``taskvec run``), ``AnalysisConfig``
(``taskvec analyze``) and ``ReproduceConfig`` (``taskvec reproduce``), through ``BatchedOptions``
(their memory budget, sized to the device unless given): a pydantic model that
refuses unknown options and whose ``create`` turns pydantic's report into one ``ConfigError``
naming each bad field. ``digest`` is the one hash of what a result depends on: it names run folders
and keys units, stages and analyses.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from typing import Annotated, ClassVar, Self, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from taskvec.errors import ConfigError

Model = TypeVar("Model", bound=BaseModel)


class Options(BaseModel):
    """A pipeline's validated options; build them with ``create``."""

    model_config = ConfigDict(extra="forbid")

    #: what the options are called in an error message ("invalid run options: ...")
    kind: ClassVar[str] = "options"

    #: the model a pipeline runs: a named model, hub id or folder (each pipeline its default)
    model: str

    #: options that decide how the work is done, not what it gives, with the value identities
    #: (run folders, units, stages) hash in each one's place (``for_identity``)
    identity_values: ClassVar[dict[str, object]] = {}

    def for_identity(self) -> Self:
        """These options as identities hash them: every option of ``identity_values`` at the
        value given there, so a run resumes under another memory budget (a GPU that ran out of
        memory) and what was computed before keeps its identity. Batches of other sizes may
        differ in the last bits, as another thread count does."""
        return self.model_copy(update=self.identity_values)

    @classmethod
    def create(cls, **options) -> Self:
        """Build the options, turning pydantic's report into a ``ConfigError`` that names the field."""
        return validated(cls, cls.kind, **options)

    def named_after(self, model: str, names: Collection[str] = ()) -> Self:
        """These options for a model given in memory (not loaded by its name): the model names the
        run (its folder, config.json, report) unless the options name one, which must then be it
        or one of its ``names`` (an alias the options may keep: ``embedded-vlm``)."""
        if "model" not in self.model_fields_set:
            return self.model_copy(update={"model": model})
        if self.model != model and self.model not in names:
            raise ConfigError(
                f"the options name model {self.model!r}, but the model given is {model!r}; leave the "
                "options' model out to run under the given model's name"
            )
        return self


#: the model ``taskvec run`` and ``taskvec analyze`` use unless told otherwise (here, not in the
#: model registry, so the command's help is drawn without importing torch)
DEFAULT_MODEL = "smollm2-135m"
#: the vision-language model ``taskvec reproduce`` uses unless told otherwise
DEFAULT_VLM = "embedded-vlm"

#: the largest magnitude a seed may have: results tables hold seeds as 64-bit integers
SEED_LIMIT = 2**63 - 1


def _distinct_seeds(value: list[int]) -> list[int]:
    """Seeds each named once (a seed twice would count one unit twice in the mean), each one a
    64-bit integer (what the tables hold: a larger one failed only when the results were written)."""
    if len(set(value)) != len(value):
        raise ValueError(f"a seed is listed twice: {value}")
    for seed in value:
        if abs(seed) > SEED_LIMIT:
            raise ValueError(f"seed {seed} is too large: seeds are 64-bit integers, at most {SEED_LIMIT}")
    return value


#: a run's seeds: at least one, none twice, each a 64-bit integer
Seeds = Annotated[list[int], Field(min_length=1), AfterValidator(_distinct_seeds)]

#: one seed of a training (``taskvec align``): a 64-bit integer, as torch's generators take
#: (a larger one passed validation and failed once training started)
Seed = Annotated[int, Field(ge=-SEED_LIMIT, le=SEED_LIMIT)]


#: MB the working set of one batch may take (``MemoryBudget``); None: sized to the model's device
#: once it is loaded (1 GiB on a CPU, most of a GPU's free memory)
MemoryBudgetMB = Annotated[float | None, Field(gt=0, allow_inf_nan=False)]


class BatchedOptions(Options):
    """Options of a pipeline that batches prompts under a memory budget. Each declares
    ``memory_budget_mb: MemoryBudgetMB = None`` itself, where the field has always sat in its
    identity's JSON (a field declared here would come first and change every identity)."""

    #: the budget decides how many prompts share a batch, not what a prompt computes; identities
    #: hash the 1 GiB they hashed before it left them, so older folders keep their identities
    identity_values: ClassVar[dict[str, object]] = {"memory_budget_mb": 1024.0}


def validated(schema: type[Model], kind: str, /, **options) -> Model:
    """``schema(**options)``, pydantic's report turned into one ``ConfigError`` naming each bad
    field ("invalid <kind>: steps: ..."; the command line names them as its flags)."""
    try:
        return schema(**options)
    except ValidationError as error:
        # our own validators' messages without pydantic's "Value error, " before them
        problems = tuple(
            (".".join(map(str, e["loc"])) or "config", e["msg"].removeprefix("Value error, "))
            for e in error.errors()
        )
        message = f"invalid {kind}: " + "; ".join(f"{f}: {m}" for f, m in problems)
        raise ConfigError(message, fields=problems) from None


def digest(*parts: str, length: int = 12) -> str:
    """The identity of what a result depends on: SHA-256 of ``parts`` joined by ``|``, shortened."""
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:length]

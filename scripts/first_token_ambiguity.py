"""How often a first-token metric cannot tell answers apart on the built-in tasks (the tables of
docs/metrics.md): per task's test split and tokenizer, the labels the tokenizer starts with a lone
letter, the items for which another item's right answer passes ``paper``, and those whose echoed
input passes it; with ``--pictures``, the items whose picture's name is credited as the answer::

    python scripts/first_token_ambiguity.py              # loads SmolLM2 and Gemma 3 (tokenizers)
    python scripts/first_token_ambiguity.py --pictures   # no model
"""

from __future__ import annotations

import argparse

from taskvec import load_model
from taskvec.evaluation.metrics import paper_match, whole_label_match
from taskvec.tasks import images
from taskvec.tasks.registry import BUILTIN_TASKS, load_task
from taskvec.tasks.task import Item

#: ``first_tokens_of`` gives a text's first token after no space (the paper template) and after one
FORMS = ("A:x", "A: x")


def counts(items: list[Item], first: dict[str, list[str]], form: int) -> tuple[int, int, int]:
    """(lone-letter labels, items another item's answer passes for, items their echo passes for)."""
    labels = sorted({item.label for item in items})
    starts = {text: tokens[form].strip() for text, tokens in first.items()}
    lone = sum(starts[i.label].isalpha() and len(starts[i.label]) == 1 for i in items)
    others = sum(any(paper_match(starts[o], [i.label]) for o in labels if o != i.label) for i in items)
    echoes = sum(paper_match(starts[i.input], [i.label]) for i in items)
    return lone, others, echoes


def token_table() -> None:
    print("| task (test items) | tokenizer | lone letter | another item's answer passes | echo passes |")
    print("|---|---|---|---|---|")
    for model_name in ("smollm2-135m", "gemma3-270m"):
        model = load_model(model_name)
        for task_name in BUILTIN_TASKS:
            items = list(load_task(task_name).test)
            first = {text: model.first_tokens_of(text) for i in items for text in (i.label, i.input)}
            by_form = [counts(items, first, form) for form in range(len(FORMS))]
            cells = [" / ".join(str(c[k]) for c in by_form) for k in range(3)]
            print(f"| {task_name} ({len(items)}) | {model_name} | " + " | ".join(cells) + " |")
    print(f"each cell: {' / '.join(FORMS)}")


def picture_names() -> None:
    for task_name in BUILTIN_TASKS:
        for split in ("val", "test"):
            for item in load_task(task_name).split(split):
                name = images.name_of(item.entity)
                by_paper = paper_match(name.split()[0], [item.label])
                by_whole = whole_label_match(" " + name, [item.label, *item.aliases])
                if by_paper or by_whole:
                    print(
                        f"{task_name} {split}: picture {name!r} -> {item.label!r}: paper {by_paper}, "
                        f"whole_label {by_whole}"
                    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pictures", action="store_true", help="items whose picture's name is credited")
    if parser.parse_args().pictures:
        picture_names()
    else:
        token_table()


if __name__ == "__main__":
    main()

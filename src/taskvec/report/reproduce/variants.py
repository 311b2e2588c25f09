"""Two variants of one model side by side (the embedded VLM with a frozen and with a LoRA-tuned
language model): the figures that tell them apart and the claims on both."""

from __future__ import annotations

import math

import pandas as pd

from taskvec.report.reproduce.folder import ReproductionFolder
from taskvec.report.reproduce.layout import Table, number
from taskvec.tasks.images import TRAINING_STYLES

#: Table 3 rows (image queries) the side-by-side summary shows
VARIANT_ROWS = ("No Context", "Text ICL xBase", "Text ICL xPatch", "Image ICL Base", "Image ICL Patch")


def _mean_recognition(context: dict) -> float | None:
    """Mean strict recognition over the embedded VLM's training styles (the held-out style left out)."""
    recognition = context.get("recognition")
    if not recognition:
        return None
    cells = [
        value
        for style, row in recognition.items()
        if style in TRAINING_STYLES
        for value in row.values()
        if value is not None and not (isinstance(value, float) and math.isnan(value))
    ]
    return sum(cells) / len(cells) if cells else None


def _shared_metrics(folders: list[ReproductionFolder], style: str) -> list[str]:
    """The metrics whose Table 3 every folder has, ``paper`` first."""
    found = [
        {p.stem[len(f"table3_{style}_") :] for p in (f.root / "tables").glob(f"table3_{style}_*.csv")}
        for f in folders
    ]
    metrics = {m for m in set.intersection(*found) if not m.endswith("_std")}
    return sorted(metrics, key=lambda m: (m != "paper", m))


def variant_summary(folders: list[ReproductionFolder]) -> pd.DataFrame:
    """The figures that tell the variants apart, one column per folder's model: Table 3 averages
    on image queries per style and metric, text -> text Base and Patch and Table 4 (the paper's
    metric and the whole-label one), Table 4's cosine, and recognition."""
    names = [f.config["model"]["name"] for f in folders]
    styles = [
        s
        for s in folders[0].config["reproduce"]["styles"]
        if all(s in f.config["reproduce"]["styles"] for f in folders[1:])
    ]
    rows: dict[tuple[str, str], list] = {}
    for style in styles:
        for metric in _shared_metrics(folders, style):
            tables = [f.table(f"table3_{style}_{metric}") for f in folders]
            for row in VARIANT_ROWS:
                rows[(f"Table 3, images in {style}, {metric}", row)] = [
                    float(t.loc[row, "average"]) if row in t.index else None for t in tables
                ]
    for metric in ("paper", "whole_label"):
        matrices = [f.table(f"matrix_{metric}", [0, 1]) for f in folders]
        for method, row in (("Base", "Text ICL Base"), ("Patch", "Text ICL Patch")):
            key = ("Text ICL -> text", method)
            rows[(f"text -> text, {metric}", row)] = [
                float(m.loc[key, "average"]) if m is not None and key in m.index else None for m in matrices
            ]
    for style in styles:
        for metric, suffix in (("paper", ""), ("whole_label", " (whole_label)")):
            for vectors in ("VLM -> VLM xPatch", "LLM -> VLM xPatch"):
                values = []
                for f in folders:
                    table = f.table("table4", [0, 1])
                    present = table is not None and (style, vectors + suffix) in table.index
                    values.append(float(table.loc[(style, vectors + suffix), "average"]) if present else None)
                rows[(f"Table 4, images in {style}, {metric}", vectors)] = values
    for pair in ("LLM text ICL vs VLM text ICL", "LLM text ICL vs VLM image ICL"):
        values = []
        for f in folders:
            table = f.table("table4_similarity")
            values.append(
                float(table.loc[pair, "same task"]) if table is not None and pair in table.index else None
            )
        rows[("Table 4 cosine (same task)", pair)] = values
    rows[("recognition", "mean strict, training styles")] = [_mean_recognition(f.context) for f in folders]
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=names)
    frame.index = pd.MultiIndex.from_tuples(frame.index, names=["figure", "row"])
    return frame.map(lambda v: number(v, 3) if v is not None else "")


def variant_claims(folders: list[ReproductionFolder]) -> pd.DataFrame:
    """The claims table of each folder's model beside each other: ours and the verdict per model."""
    merged = None
    for f in folders:
        name = f.config["model"]["name"]
        table = f.table("claims", [0, 1]).astype(object).fillna("")
        part = table[["ours", "held"]].rename(columns={"ours": f"{name}: ours", "held": f"{name}: held"})
        merged = table[["paper"]].join(part) if merged is None else merged.join(part, how="left")
    return merged.fillna("")


def variants_blocks(folder: ReproductionFolder) -> list:
    other = ReproductionFolder(
        folder.root / folder.context["compare_with"],
        role="the reproduction this report is compared with",
        cure="render with --compare-with FOLDER where it is now",
    )
    folders = [folder, other]
    names = [f"`{f.config['model']['name']}`" for f in folders]
    blocks: list = [
        f"This report's model, {names[0]}, beside {names[1]} (its reproduction: "
        f"`{folder.context['compare_with']}`), same protocol. One embedded VLM keeps its language model "
        "frozen, so on text it is its base LLM and Table 4 holds by construction; the other's language "
        "model was tuned with LoRA during alignment (`taskvec align --stage lora`), so its text-ICL "
        "vectors are its own and Table 4 is an experiment.",
        Table(variant_summary(folders), "Figures that tell the variants apart (6-task means over seeds)"),
        Table(variant_claims(folders), "The paper's claims on both (the paper's metric)"),
    ]
    return blocks

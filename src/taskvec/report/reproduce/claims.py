"""The paper's claims, each checked on a finished reproduction: the published figure, ours and
whether it held, by the paper's metric and the whole-label one.

A claim that compares two methods says how far their difference could move on other test items
(``evaluation.uncertainty``: paired by item, 95% interval): ``held`` gains ", within noise" where
that interval holds the claim's threshold, so a verdict resting on a few items reads as such."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from taskvec.evaluation.scoring import answer_diversity
from taskvec.evaluation.uncertainty import Difference, paired_difference, share_interval
from taskvec.experiments import paper
from taskvec.experiments.conditions import TABLE3_ROWS, Condition, table3_with_std
from taskvec.experiments.conflict import CONFLICT_METRICS, metric_column
from taskvec.experiments.ensemble import item_scores, summarise_ensemble
from taskvec.pipelines.reproduce import Reproduction
from taskvec.storage.markdown import fixed

#: the metrics of the report's tables: the paper's, then the whole-label one beside it, then strict
REPORT_METRICS = ("paper", "whole_label", "strict")
#: a claim whose measure is no accuracy of Table 3 (its own score, or the answers' diversity)
METRIC_FREE = "metric-free"
#: the claims table's note where a claim holds by construction rather than by experiment
#: the same where the VLM is not known to be built on the LLM, but their text-ICL vectors came
#: out equal (a VLM trained with its language model frozen, ``--llm`` naming that very model)
SAME_VECTORS = (
    "by construction: the LLM's text-ICL vectors equal the VLM's, value for value (its language "
    "model computes text as this LLM does); equal numbers here are no evidence of transfer"
)
BY_CONSTRUCTION = (
    "by construction: the VLM's language model is this LLM itself, frozen, so on text prompts "
    "both compute the same task vectors; equal numbers here are no evidence of transfer"
)


def _above_floor(ok: bool, floor: float, *scores: float) -> bool | None:
    """A claim that one method does "at least as well" as another says nothing where neither
    scores above No Context (0.00 vs 0.00 "held"): then it is not judged (None, "not judged":
    not "n/a", which pandas reads back from the claims table as missing)."""
    return ok if max(scores) > floor else None


def _verdict(ok: bool | None) -> str:
    return {True: "yes", False: "no", None: "not judged"}[ok]


#: what ``held`` gains where the items cannot tell the difference from the claim's threshold
WITHIN_NOISE = ", within noise"


@dataclass(frozen=True)
class Comparison:
    """A claim's two sides, A minus B, paired on the same test items; the claim holds where the
    difference is above ``threshold`` (``at_least``: not below it)."""

    difference: Difference
    threshold: float = 0.0
    at_least: bool = False
    #: B is nothing: the difference is A's own share, whose claim says its interval itself
    share: bool = False

    @classmethod
    def of(
        cls, a: pd.DataFrame, b: pd.DataFrame, metric: str, threshold: float = 0.0, at_least: bool = False
    ) -> Comparison:
        """A's rows of predictions against B's (``paired_difference``)."""
        return cls(paired_difference(a, b, metric), threshold, at_least)

    @classmethod
    def share_of(cls, rows: pd.DataFrame, column: str, threshold: float) -> Comparison:
        """The share of ``rows`` (each an item, pooled) where ``column`` is true, against
        ``threshold``, with its 95% interval over the items (``share_interval``)."""
        return cls(share_interval(int(rows[column].astype(bool).sum()), len(rows)), threshold, share=True)

    def holds(self) -> bool:
        # to 9 places, as ``fixed`` reads a value: two equal sides averaged in another order
        # differ by 1e-17, which is no gap ("0.33 vs 0.33 ... yes")
        gap = round(self.difference.mean - self.threshold, 9)
        return gap >= 0 if self.at_least else gap > 0

    def settled(self) -> bool:
        """Whether every difference in the interval gives the verdict the mean gives: otherwise the
        items cannot tell the gap from the threshold."""
        low, high = (round(end - self.threshold, 9) for end in (self.difference.low, self.difference.high))
        return (low >= 0 or high < 0) if self.at_least else (low > 0 or high <= 0)


def _rows(predictions: pd.DataFrame, method: str) -> pd.DataFrame:
    return predictions[predictions.method == method]


def _table3_rows(results: dict[Condition, object], style: str, name: str) -> pd.DataFrame:
    """The predictions behind Table 3's row ``name`` on image queries in ``style``."""
    spec, method = TABLE3_ROWS[name]
    return _rows(results[Condition(spec, "image", style)].predictions, method)


def paper_figures(rows: list[tuple[float, ...]], tasks: Sequence[str], model: str = "") -> str:
    """The paper's figures of ``rows`` (a row: six tasks, then their average) beside ours over
    ``tasks``: '0.51 vs 0.18 (Idefics2)' over the six, the mean of its per-task values over a
    subset of them (said so), 'not reported' where the paper has not one of our tasks."""
    averages = [paper.over_tasks(row, tasks).get("average") for row in rows]
    if any(value is None for value in averages):
        return "not reported for these tasks"
    said = [model] if model else []
    if not paper.all_six(tasks):
        said.append("mean over the same tasks")
    return " vs ".join(fixed(value) for value in averages) + (f" ({', '.join(said)})" if said else "")


def claims(
    reproduction: Reproduction, ensemble: pd.DataFrame | None, conflict: pd.DataFrame | None, metric: str
) -> pd.DataFrame:
    """The paper's claims, each with its published figure and ours, per image style. ``note``
    says where a verdict holds by construction (the LLM -> VLM claim when the LLM is the VLM's
    own language model, frozen) rather than by experiment."""
    rows = []
    for style in reproduction.config.styles:
        mean, _ = table3_with_std(reproduction.conditions, style, metric)
        avg, tasks = mean["average"], list(mean.columns)
        idefics2, table4 = paper.TABLE3["Idefics2"], paper.TABLE4["Idefics2 (Mistral -> Idefics2)"]
        results = reproduction.conditions
        text_to_image = float(avg["Text ICL xPatch"])
        diversity = answer_diversity(reproduction.main_condition(style).predictions)
        xpatch = diversity.xs("xpatch", level="method")
        collapsed = xpatch[xpatch.collapsed.fillna(False).astype(bool)]
        # concentrated answers on a split the rule cannot judge (its top label over half of it)
        unjudged = xpatch[xpatch.collapsed.isna()]
        collapse_claim = "Text ICL xPatch's answers on image queries do not collapse onto one answer"
        # "yes" where the rule judged only some tasks says on how many; none judged is no verdict
        judged = len(xpatch) - len(unjudged)
        scopes = {collapse_claim: f", on {judged} of {len(xpatch)} tasks judged"} if len(unjudged) else {}
        collapse_ok = not len(collapsed) if len(collapsed) or len(unjudged) < len(xpatch) else None
        xpatch_rows = _table3_rows(results, style, "Text ICL xPatch")
        beside_xbase = Comparison.of(xpatch_rows, _table3_rows(results, style, "Text ICL xBase"), metric)
        above_nothing = Comparison.of(xpatch_rows, _table3_rows(results, style, "No Context"), metric, 0.1)
        image_icl = _table3_rows(results, style, "Image ICL Patch")
        beside_image_icl = Comparison.of(xpatch_rows, image_icl, metric, at_least=True)
        beside_prior = Comparison.of(xpatch_rows, _table3_rows(results, style, "Label prior"), metric)
        # (claim, published, ours, verdict, note, the comparison it rests on)
        checks: list[tuple[str, str, str, bool | None, str, Comparison | None]] = [
            (
                "Text ICL xPatch beats Text ICL xBase on image queries",
                paper_figures([idefics2["Text ICL xPatch"], idefics2["Text ICL xBase"]], tasks, "Idefics2"),
                f"{fixed(text_to_image)} vs {fixed(avg['Text ICL xBase'])}",
                beside_xbase.holds(),
                "",
                beside_xbase,
            ),
            (
                "Text ICL xPatch is far above No Context",
                paper_figures([idefics2["Text ICL xPatch"], idefics2["No Context"]], tasks),
                f"{fixed(text_to_image)} vs {fixed(avg['No Context'])}",
                above_nothing.holds(),
                "",
                above_nothing,
            ),
            (
                "Text-ICL vectors patch image queries at least as well as image-ICL vectors",
                paper_figures([idefics2["Text ICL xPatch"], idefics2["Image ICL Patch"]], tasks),
                f"{fixed(text_to_image)} vs {fixed(avg['Image ICL Patch'])}",
                _above_floor(
                    beside_image_icl.holds(),
                    avg["No Context"],
                    text_to_image,
                    avg["Image ICL Patch"],
                ),
                "",
                beside_image_icl,
            ),
            (
                "Text ICL xPatch beats the label prior (the most frequent val label for every item)",
                "not reported",
                f"{fixed(text_to_image)} vs {fixed(avg['Label prior'])}",
                beside_prior.holds(),
                "",
                beside_prior,
            ),
            (
                collapse_claim,
                "not reported",
                f"collapsed on {len(collapsed)} of {len(xpatch)} tasks: "
                + ", ".join(f"{t} ({r.top_answer!r} {fixed(r.top_share)})" for t, r in collapsed.iterrows())
                if len(collapsed)
                else f"no task (top answer's share at most {fixed(xpatch.top_share.max())})"
                + "".join(
                    f"; the rule cannot judge {t} (top answer {fixed(r.top_share)}, its split's top label "
                    f"{fixed(r.label_share)}): compare it with the label prior"
                    for t, r in unjudged.iterrows()
                ),
                collapse_ok,
                METRIC_FREE,
                None,
            ),
        ]
        image_to_text = reproduction.conditions.get(Condition("image-icl", "text", style))
        if image_to_text is not None:
            summary = image_to_text.predictions
            got = summary[summary.method == "xpatch"].groupby(["task", "seed"])[metric].mean().mean()
            base = summary[summary.method == "no_context"].groupby(["task", "seed"])[metric].mean().mean()
            to_text = Comparison.of(_rows(summary, "xpatch"), _rows(summary, "no_context"), metric, 0.1)
            checks.append(
                (
                    "Image-ICL vectors transfer to text queries (Image ICL -> text xPatch > No Context)",
                    paper_figures([paper.MATRIX["Idefics2"]["Image ICL -> text"]], tasks, "Idefics2"),
                    f"{fixed(got)} vs {fixed(base)}",
                    to_text.holds(),
                    "",
                    to_text,
                )
            )
        if style in reproduction.transfer:
            llm = reproduction.transfer[style].predictions
            llm_acc = llm[llm.method == "xpatch"].groupby(["task", "seed"])[metric].mean().mean()
            transfer = Comparison.of(_rows(llm, "xpatch"), xpatch_rows, metric, -0.05, at_least=True)
            checks.append(
                (
                    "LLM -> VLM xPatch about as good as VLM -> VLM",
                    paper_figures(
                        [table4["LLM -> VLM xPatch"], table4["VLM -> VLM xPatch"]], tasks, "Idefics2"
                    ),
                    f"{fixed(llm_acc)} vs {fixed(text_to_image)}",
                    _above_floor(transfer.holds(), avg["No Context"], llm_acc, text_to_image),
                    BY_CONSTRUCTION
                    if reproduction.transfer_by_construction
                    else SAME_VECTORS
                    if reproduction.transfer_vectors_equal
                    else "",
                    transfer,
                )
            )
        if ensemble is not None and len(ensemble):
            in_style = ensemble[ensemble["style"] == style]
            smallest = min(reproduction.config.ensemble_counts)
            summary = summarise_ensemble(in_style)
            five = summary[summary.n == smallest]
            exemplar = float(five[five.kind == "exemplars"]["mean"].iloc[0])
            mixed = float(five[five.kind == "ensemble"]["mean"].iloc[0])
            beside = None  # a table of an older taskvec keeps no item's score: no interval
            if "correct" in in_style.columns:
                items = item_scores(in_style[in_style.n == smallest])
                beside = Comparison.of(
                    items[items.kind == "ensemble"], items[items.kind == "exemplars"], "score"
                )
            checks.append(
                (
                    "Instruction + exemplar ensemble beats exemplars alone at the smallest n",
                    "ensemble above exemplars (Fig. 8)",
                    f"{fixed(mixed)} vs {fixed(exemplar)}",
                    mixed > exemplar if beside is None else beside.holds(),
                    METRIC_FREE,
                    beside,
                )
            )
        if conflict is not None and len(conflict) and style == reproduction.training_style:
            fit = metric if metric in CONFLICT_METRICS else "paper"
            wins = Comparison.share_of(conflict, metric_column("fits_patched", fit), threshold=0.5)
            followed, echoed = (
                fixed(conflict[metric_column(column, fit)].mean())
                for column in ("control_fits_prompted", "control_fits_patched")
            )
            share = f"{fixed(wins.difference.mean)}, {wins.difference.interval_phrase()}"
            checks.append(
                (
                    "A patched task overrides a conflicting instruction",
                    "patched task answered (Fig. 9)",
                    f"patched task {share} (control follows prompt {followed}, already fits the "
                    f"patched task {echoed})",
                    wins.holds(),
                    "",
                    wins,
                )
            )
        for claim, published, ours, ok, note, comparison in checks:
            # (not judged: nothing compared; a share's claim says its interval itself)
            if comparison is not None and ok is not None and not comparison.share:
                ours += f" ({comparison.difference.phrase()})"
            free = note == METRIC_FREE
            by_construction = ok is not None and note in (BY_CONSTRUCTION, SAME_VECTORS)
            scope = scopes.get(claim, "") if ok else ""
            unsettled = comparison is not None and not comparison.settled()
            noisy = ok is not None and unsettled and not by_construction
            held = (
                _verdict(ok)
                + scope
                + (WITHIN_NOISE if noisy else "")
                + (", by construction" if by_construction else "")
            )
            if ok is None:
                note = f"neither side above No Context ({fixed(avg['No Context'])}): nothing to compare"
            rows.append(
                {
                    "style": style,
                    "claim": claim,
                    "paper": published,
                    "ours": ours,
                    "held": held,
                    "note": "" if free else note,
                    "metric_free": free,
                }
            )
    return pd.DataFrame(rows)


def claims_beside(reproduction: Reproduction, ensemble, conflict) -> pd.DataFrame:
    """``claims`` by the paper's metric with, beside ``ours`` and ``held``, the same checks by the
    whole-label metric (``-`` where a claim's measure is neither a Table 3 accuracy nor the
    conflict's answers: the ensembling figure's own case-insensitive score, the diversity)."""
    paper_rows = claims(reproduction, ensemble, conflict, "paper")
    whole = claims(reproduction, ensemble, conflict, "whole_label")
    free = paper_rows.pop("metric_free").to_numpy(dtype=bool)
    table = paper_rows.assign(
        **{
            "ours (whole_label)": whole["ours"].where(~free, "-").to_numpy(),
            "held (whole_label)": whole["held"].where(~free, "-").to_numpy(),
        }
    )
    columns = ["style", "claim", "paper", "ours", "held", "ours (whole_label)", "held (whole_label)", "note"]
    return table[columns]

"""The figures that tell the embedded VLM's two variants apart, without a whole reproduction.

Runs, into a reproduction folder (``taskvec reproduce --out`` resumes from it later), the
conditions those figures need: Text ICL -> text, Text ICL -> image in one style and LLM -> VLM
transfer (Table 4) with the bare base LLM; then prints, per metric, Text ICL xBase / xPatch on
image queries, Text ICL xPatch on text queries, Table 4's two rows and the cosine of the LLM's and
the VLM's text-ICL vectors (same task vs different tasks, at the VLM's chosen layer)::

    python scripts/embedded_lora_targets.py --model embedded-vlm-gemma3-lora --out DIR
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from taskvec.experiments.conditions import Condition, method_summary
from taskvec.models.registry import load_model
from taskvec.pipelines.reproduce import ReproduceConfig, Reproduction, base_llm, run_conditions


def _cosines(reproduction: Reproduction, style: str) -> dict[str, float]:
    """Table 4's cosine of the LLM's and the VLM's text-ICL vectors, as the reproduction computes it."""
    layer, same, different = reproduction.llm_cosines(Condition("text-icl", "image", style))
    return {"layer": layer, "same task": same, "different tasks": different}


class FixedLayerReproduction(Reproduction):
    """A reproduction whose runs patch at the given layers only (the validation split then
    chooses among them): one layer makes a run several times cheaper than the 18-layer sweep."""

    def __init__(self, *args, layers: list[int] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.layers = layers

    def run_options(self) -> dict:
        options = super().run_options()
        return options if self.layers is None else {**options, "layers": self.layers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="embedded-vlm-gemma3-lora")
    parser.add_argument("--style", default="noto")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quick", action="store_true", help="a smoke run (as `taskvec reproduce --quick`)")
    parser.add_argument(
        "--queries",
        nargs="+",
        default=["text", "image"],
        choices=["text", "image"],
        help="which Text ICL conditions to run (image also runs Table 4); two processes can share the work",
    )
    parser.add_argument("--seed", type=int, nargs="+", default=[1, 2, 3], help="seeds (default 1 2 3)")
    parser.add_argument(
        "--layer", type=int, nargs="+", help="patch at these layers only (default: every layer, as reproduce)"
    )
    args = parser.parse_args()
    config = ReproduceConfig.create(model=args.model, styles=[args.style], quick=args.quick, seeds=args.seed)
    adapter = load_model(config.model)
    reproduction = FixedLayerReproduction(adapter, config, args.out, layers=args.layer)
    reproduction.start()
    wanted = {"text": Condition("text-icl", "text"), "image": Condition("text-icl", "image", args.style)}
    conditions = [wanted[q] for q in args.queries]
    reproduction.share_demonstrations(conditions)
    reproduction.conditions = run_conditions(
        adapter, conditions, args.out / "conditions", True, reproduction.shared, **reproduction.run_options()
    )
    figures: dict = {"model": adapter.name, "style": args.style}
    llm = None
    if "image" in args.queries:
        llm = base_llm(adapter, config)
        reproduction.run_transfer(llm)
        figures["llm"] = llm.name
    columns = next(iter(reproduction.conditions.values())).predictions.columns
    metrics = [c for c in columns if c in ("paper", "strict", "exact") or c.startswith("whole")]
    rows = {
        "text": {"Text ICL Base, text queries": "xbase", "Text ICL Patch, text queries": "xpatch"},
        "image": {
            "Text ICL xBase, image queries": "xbase",
            "Text ICL xPatch, image queries (VLM -> VLM)": "xpatch",
            "No Context, image queries": "no_context",
        },
    }
    for metric in metrics:
        figures[metric] = {}
        for query in args.queries:
            summary = method_summary(reproduction.conditions[wanted[query]], metric)
            for name, method in rows[query].items():
                figures[metric][name] = float(summary[("mean", method)]["average"])
        if llm is not None:
            transfer = method_summary(reproduction.transfer[args.style], metric)
            figures[metric]["LLM -> VLM xPatch, image queries"] = float(
                transfer[("mean", "xpatch")]["average"]
            )
    if llm is not None:
        figures["cosine LLM vs VLM text-ICL vectors"] = _cosines(reproduction, args.style)
    figures["recognition"] = adapter.recognition()
    print(json.dumps(figures, indent=1))
    (args.out / "targets.json").write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()

"""Model families: one adapter file per family. ``causal_lm`` serves text-only LMs; the others
are vision-language families that register their ``model_type`` with the registry.

``register_all`` imports every family module (each calls ``register_family`` on import). The
registry calls it at its end, so loading ``taskvec.models.registry`` makes every family available
without an import cycle (family modules import the registry).
"""

from __future__ import annotations

import importlib

FAMILY_MODULES = (
    "llava",
    "llava_next",
    "llava_onevision",
    "idefics2",
    "idefics3",
    "qwen2_vl",
    "qwen2_5_vl",
    "qwen3_vl",
    "gemma3",
    "paligemma",
    "fuyu",
    "internvl",
    "mllama",
)


def register_all() -> None:
    for module in FAMILY_MODULES:
        importlib.import_module(f"{__name__}.{module}")

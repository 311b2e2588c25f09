"""Model families: one adapter file per family. ``causal_lm`` serves text-only LMs; the others
are vision-language families.

Each module declares ``MODEL_TYPES``, the HF ``model_type``s it serves mapped to their ``Family``
(``taskvec.models.loading``: the loader, and the adapter class that wraps a model in memory);
``taskvec.models.registry.discover_families`` finds the modules with ``pkgutil`` when a family is
first needed. Nothing here registers anything on import. Adding a family is adding one module (and
its tiny case: a scheme in ``tests/helpers/tinyllm.py`` or a ``FamilyCase`` in
``tests/helpers/families/``; docs/families.md).
"""

"""Run pipelines: one place for run folders, config creation, identities and progress. Each
validates its inputs, runs the pure computations below it and writes one folder.

- ``evaluate``: the paper's protocol over tasks and seeds (``taskvec run``);
- ``analyze``: logit lens, decodings, similarity, embeddings (``taskvec analyze``);
- ``reproduce``: every experiment of the paper (``taskvec reproduce``; ``report.reproduce`` writes
  its report);
- ``align``: train the embedded VLM's recogniser, projector and LoRA adapters, write their
  weights (``taskvec align``);
- ``verify``: re-derive a run's task vectors from its folder, the model and the task files
  (``taskvec verify``).
"""

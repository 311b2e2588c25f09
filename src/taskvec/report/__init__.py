"""What a reader reads of a finished pipeline, written from its results alone: a run's tables,
plots and ``report.md`` (``tables.write_run_report``); the reproduction's report beside the paper
(``reproduce.write_report``, re-rendered from a copied folder by ``reproduce.render_report``)."""

"""What a reader reads of a finished pipeline, written from its results alone: a run's tables,
plots and ``report.md`` (``tables.write_run_report``); an analysis's plots and ``summary.md``
(``analysis.write_analysis_report``); the reproduction's report beside the paper
(``reproduce.write_report``, re-rendered from a copied folder by ``reproduce.render_report``)."""

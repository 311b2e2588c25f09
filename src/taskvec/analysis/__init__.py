"""Looking inside: logit lens (three phases, top-1 decodings), task-vector decodings, similarity
between specifications and 2-D maps of task vectors. Library functions return data frames and
tensors; ``taskvec.report.plots`` draws them; ``taskvec.pipelines.analyze`` runs them all into one
folder."""

from taskvec.analysis.collect import SpecStates, collect
from taskvec.analysis.embedding import cluster_purity, embed, embedding_frame
from taskvec.analysis.lens import (
    MASS,
    decode_vector,
    decodings_table,
    lens_logits,
    lens_probs,
    phase_curve,
    phase_masses,
    phase_ranges,
    top1_decodings,
    top1_distribution,
    vector_decodings,
)
from taskvec.analysis.similarity import cosine_matrix, pair_summary, similarity_by_layer
from taskvec.analysis.token_sets import PHASES, TokenSets, load_words, token_sets

__all__ = [
    "MASS",
    "PHASES",
    "SpecStates",
    "TokenSets",
    "cluster_purity",
    "collect",
    "cosine_matrix",
    "decode_vector",
    "decodings_table",
    "embed",
    "embedding_frame",
    "lens_logits",
    "lens_probs",
    "load_words",
    "pair_summary",
    "phase_curve",
    "phase_masses",
    "phase_ranges",
    "similarity_by_layer",
    "token_sets",
    "top1_decodings",
    "top1_distribution",
    "vector_decodings",
]

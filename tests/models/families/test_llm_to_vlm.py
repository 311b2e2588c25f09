"""LLM -> VLM transfer: a task vector extracted in a family's base LLM patches into the VLM when
the widths match (the patch lands: the VLM then answers what the vector decodes to), and a vector
of another width is refused, with the widths named, before any forward pass."""

import pytest
import torch
from helpers.contract import check_last_layer_patch_decodes_the_vector
from helpers.families import CASES
from helpers.tinyllm import tiny_llm
from helpers.tinyparts import image_query, text_examples_image_query, text_icl, text_query

from taskvec.errors import VectorMismatchError
from taskvec.patching.patch import Patch, first_token_ids
from taskvec.patching.sweep import sweep
from taskvec.vectors.extract import last_token_states

torch.set_num_threads(1)


@pytest.fixture(params=CASES, ids=str)
def family(request):
    case = request.param
    return case, case.build()


def test_a_base_llm_vector_patches_into_the_vlm(family):
    case, vlm = family
    llm = tiny_llm(case.base_llm, hidden=vlm.hidden_size, layers=vlm.num_layers)
    vectors = last_token_states(llm, [text_icl(0), text_icl(1)]).mean(0)  # [layers, hidden]
    queries = [image_query(0), text_query(1), text_examples_image_query(2)]
    check_last_layer_patch_decodes_the_vector(vlm, vectors, queries)


def test_a_different_width_is_refused(family):
    _case, vlm = family
    llm = tiny_llm("llama", hidden=vlm.hidden_size + 16)
    vectors = last_token_states(llm, [text_icl(0)])[0]  # [2, 48]
    with pytest.raises(VectorMismatchError, match=f"{vlm.hidden_size} wide"):
        Patch(1, vectors[-1]).check(vlm)
    with pytest.raises(VectorMismatchError, match=f"{vlm.hidden_size} wide"):
        first_token_ids(vlm, [image_query(0)], Patch(1, vectors[-1]))
    with pytest.raises(VectorMismatchError, match=f"{vlm.hidden_size} wide"):
        sweep(vlm, [image_query(0)], vectors, [0, 1])

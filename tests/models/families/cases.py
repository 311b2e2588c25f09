"""Every vision-language family's ``FamilyCase``, gathered from the family test modules."""

import test_fuyu
import test_gemma3
import test_idefics2
import test_idefics3
import test_internvl
import test_llava
import test_llava_next
import test_mllama
import test_paligemma
import test_qwen2_vl

MODULES = [
    test_llava,
    test_llava_next,
    test_idefics2,
    test_idefics3,
    test_qwen2_vl,
    test_gemma3,
    test_paligemma,
    test_fuyu,
    test_internvl,
    test_mllama,
]
CASES = [case for module in MODULES for case in module.CASES]

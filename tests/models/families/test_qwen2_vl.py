"""What is peculiar to qwen2_vl; its tiny model and case are in helpers/families/qwen2_vl.py, the
checks every family passes in test_contract.py."""

import torch
from helpers.contract import count_tokens
from helpers.families.qwen2_vl import CASES
from helpers.tinyparts import image_icl, image_query, text_query

from taskvec.models.adapter import Encoded
from taskvec.models.families.qwen2_vl import ROPE_KEY


def test_each_image_is_a_vision_block_with_its_grid():
    for case in CASES:
        adapter = case.build()
        encoded = adapter.encode([image_query(0), image_icl(0), text_query(0)])
        assert encoded.extra["image_grid_thw"].tolist() == [[1, 4, 6]] * 4  # 40 x 32 px (w x h), 4 images
        assert count_tokens(encoded, adapter.model.config.vision_start_token_id) == [1, 3, 0]
        assert count_tokens(encoded, adapter.model.config.vision_end_token_id) == [1, 3, 0]


def test_positions_are_the_models_own_mrope():
    for case in CASES:
        adapter = case.build()
        prompts = [image_icl(0), text_query(1), image_query(2)]
        encoded = adapter.encode(prompts)
        positions = adapter.full_inputs(encoded)["position_ids"]
        assert positions.shape == (3, len(prompts), encoded.seq_len)
        # after an image the positions run behind the token count (a 2 x 3 merged grid spans 3)
        assert positions[0, 0, -1] < encoded.position_ids()[0, -1]
        # the model, left to compute positions itself, gives the same logits
        with torch.no_grad():
            ours = adapter.forward(encoded).logits
            inputs = adapter.full_inputs(encoded)
            del inputs["position_ids"]
            adapter.model.model.rope_deltas = None
            theirs = adapter.model(**inputs, logits_to_keep=1).logits
        torch.testing.assert_close(ours, theirs)
        # the last-token step uses the last column
        last = adapter.last_token_inputs(encoded)["position_ids"]
        torch.testing.assert_close(last, positions[:, :, -1:])


def test_generated_tokens_are_positioned_as_the_model_would_place_them():
    """``grow`` extends the stored 3-D positions by one past the last on every axis, without the
    images; that is what ``get_rope_index`` gives the grown batch, also for rows taken apart."""
    for case in CASES:
        adapter = case.build()
        encoded = adapter.encode([image_icl(0), text_query(1), image_query(2)])
        grown = adapter.grow(
            adapter.grow(encoded, torch.tensor([[5], [6], [7]])), torch.tensor([[8], [9], [4]])
        )
        fresh = Encoded(
            grown.input_ids, grown.attention_mask, {k: v for k, v in grown.extra.items() if k != ROPE_KEY}
        )
        expected = adapter.rope_positions(fresh)  # [3, batch, seq]
        torch.testing.assert_close(adapter.full_inputs(grown)["position_ids"], expected, rtol=0, atol=0)
        rows = torch.tensor([2, 0])
        picked = adapter.rows(grown, rows)
        assert "pixel_values" not in picked.extra
        torch.testing.assert_close(adapter.last_token_inputs(picked)["position_ids"], expected[:, rows, -1:])

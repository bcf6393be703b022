"""computed_in_fp32: the heads' sensitive steps run in fp32 under autocast, unchanged without it."""
import pytest
import torch

from mmext.ops import (cosine_to_means, intersect_decode, iou_encode, modified_sigmoid_logit, net2vec_loss,
                       pixel_region_relation, spatial_gather, unit_embeddings)
from mmext.ops.precision import computed_in_fp32


@computed_in_fp32
def _matmul(a, b):
    return a @ b


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_autocast_is_off_inside_and_low_precision_inputs_are_cast(dtype):
    a, b = torch.randn(4, 8), torch.randn(8, 3)
    expected = a.to(dtype).float() @ b
    with torch.autocast('cpu', dtype=dtype):
        assert (a @ b).dtype == dtype  # what autocast does to a matmul
        assert _matmul(a, b).dtype == torch.float32
        torch.testing.assert_close(_matmul(a.to(dtype), b), expected, rtol=0, atol=0)
    assert torch.equal(_matmul(a, b), a @ b)  # fp32 without autocast: the same operation


def test_spatial_softmax_keeps_weights_of_order_one_over_n():
    """Gathering a constant feature over 128x256 pixels with uniform region logits gives the constant
    exactly in fp32; bf16 matmuls under autocast would give an error of order 2**-8."""
    feats = torch.full((1, 4, 128, 256), 3.0)
    logits = torch.zeros(1, 19, 128, 256)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        gathered = spatial_gather(feats, logits)
    assert gathered.dtype == torch.float32
    torch.testing.assert_close(gathered, torch.full((1, 4, 19, 1), 3.0), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize('dtype', [torch.bfloat16, torch.float16])
def test_sensitive_steps_match_fp32_under_autocast(dtype):
    torch.manual_seed(0)
    query, key = torch.randn(2, 8, 16, 32), torch.randn(2, 8, 19, 1)
    emb, means = torch.randn(50, 16), unit_embeddings(torch.randn(5, 16))
    weight, bias = torch.full((5, ), 7.0), torch.full((5, ), -0.5)
    masks = (torch.rand(2, 1, 32, 32) > 0.5).float()
    outputs, targets = torch.randn(2, 1, 32, 32), torch.rand(2, 1, 32, 32)
    cases = {
        'relation': lambda: pixel_region_relation(query, key),
        'cosine': lambda: cosine_to_means(unit_embeddings(emb), means),
        'modified sigmoid': lambda: modified_sigmoid_logit(cosine_to_means(unit_embeddings(emb), means),
                                                           weight, bias),
        'iou encode': lambda: iou_encode(masks, kernel_size=5),
        'intersect decode': lambda: intersect_decode(masks, kernel_size=5),
        'net2vec loss': lambda: net2vec_loss(outputs, targets),
    }
    for name, case in cases.items():
        reference = case()
        with torch.autocast('cpu', dtype=dtype):
            value = case()
        assert value.dtype == torch.float32, name
        torch.testing.assert_close(value, reference, rtol=0, atol=0, msg=name)

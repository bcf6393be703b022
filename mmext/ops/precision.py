"""Numerically sensitive steps computed in fp32 whatever autocast's op lists say.

Under ``torch.autocast`` matrix products and convolutions run in fp16/bf16 wherever they occur. That is
what makes mixed precision fast, and it is wrong for a few steps of the heads: OCR's spatial softmax
weighs N = H*W pixels by weights of order 1/N, which underflow fp16's and fall below bf16's 8-bit
mantissa at Cityscapes sizes; cosine similarities near 1 lose the digits DLDE's modified sigmoid
separates classes by; IoU encoding divides box sums. mmseg's OCR lost 3.8 mIoU under fp16 in
open-mmlab/mmsegmentation#1584 without a found cause; these steps are not exposed to that.
"""
import functools
import itertools

import torch

LOW_PRECISION = (torch.float16, torch.bfloat16)


def _to_fp32(value):
    if isinstance(value, torch.Tensor) and value.dtype in LOW_PRECISION:
        return value.float()
    return value


def computed_in_fp32(fn):
    """Decorator: ``fn`` runs with autocast disabled on its tensors' device and its fp16/bf16 tensor
    arguments cast to fp32, so its outputs are fp32. On fp32 inputs without autocast it changes nothing
    (the same operations run)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        tensors = (v for v in itertools.chain(args, kwargs.values()) if isinstance(v, torch.Tensor))
        device_type = next(tensors, torch.empty(0)).device.type
        with torch.autocast(device_type, enabled=False):
            return fn(*map(_to_fp32, args), **{k: _to_fp32(v) for k, v in kwargs.items()})

    return wrapper

"""IoU mask encoding and intersect decoding (hybrid_learning's BatchIoUEncode2D /
BatchIntersectEncode2D / BatchIntersectDecode2D) as pure tensor functions.

Shape shorthand: ``B`` batch, ``H x W`` mask size, ``kh x kw`` proto-shape (kernel) size.

A *proto shape* P (kh, kw) is a small non-negative template, e.g. a box of ones. The encoders slide P
over a mask M with "same" zero padding, front ``(k - 1) // 2`` and back ``k // 2`` per dimension (TF
"SAME" at stride 1), so that for ``pt = (kh - 1) // 2``, ``pl = (kw - 1) // 2``::

    I[i, j] = sum_{u, v} P[u, v] M[i + u - pt, j + v - pl]          (intersect, M = 0 outside)
    IoU[i, j] = (I + eps) / (|M| + sum P - I + eps)                    (|M| = sum of the mask)

and the decoder paints P back, weighted by the encoding, onto the window each position was encoded
from (the adjoint of the un-normalized encoder, divided by sum P)::

    D[i, j] = 1 / sum P * sum_{u, v} P[u, v] E[i - u + pt, j - v + pl]

For a box proto (``kernel_size`` only) both are separable window sums from running sums, whose cost
does not depend on the kernel area; other protos use a direct convolution.
"""
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F

from .precision import computed_in_fp32

ProtoShape = Union[torch.Tensor, Sequence[Sequence[float]]]


def _check_masks(masks, kernel_size: Tuple[int, int]) -> None:
    if not isinstance(masks, torch.Tensor):
        raise ValueError(f'masks must be a torch.Tensor of shape (B, 1, H, W), got {type(masks).__name__}')
    if masks.dim() != 4 or masks.shape[1] != 1:
        raise ValueError(f'masks must have shape (B, 1, H, W), got {tuple(masks.shape)}')
    if masks.shape[2] < kernel_size[0] or masks.shape[3] < kernel_size[1]:
        raise ValueError(f'masks of size {tuple(masks.shape[2:])} are smaller than the kernel {kernel_size}')


def _proto(proto_shape: Optional[ProtoShape], kernel_size, device) -> Optional[torch.Tensor]:
    """The (kh, kw) float proto, or None for a box of ones given by ``kernel_size``."""
    if proto_shape is None:
        if kernel_size is None:
            raise ValueError('one of proto_shape and kernel_size is required')
        return None
    proto = torch.as_tensor(proto_shape, dtype=torch.float32, device=device)
    if proto.dim() != 2:
        raise ValueError(f'proto_shape must be 2-D, got shape {tuple(proto.shape)}')
    if (proto < 0).any() or proto.sum() <= 0:
        raise ValueError('proto_shape must be non-negative and not all zero')
    return proto


def _kernel_size(proto: Optional[torch.Tensor], kernel_size) -> Tuple[int, int]:
    if proto is not None:
        return tuple(proto.shape)
    size = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f'kernel_size must be a positive int or (kh, kw), got {kernel_size}')
    return size


def proto_size(proto_shape: Optional[ProtoShape] = None, kernel_size=None) -> Tuple[int, int]:
    """(kh, kw) of the proto given by ``proto_shape`` or ``kernel_size``; ValueError if they are bad.

    Lets wrappers (transforms, heads) reject a bad proto when they are built.
    """
    return _kernel_size(_proto(proto_shape, kernel_size, None), kernel_size)


def _prepare(masks, proto_shape, kernel_size):
    """Validate the arguments of the public functions: (float masks, proto or None, (kh, kw))."""
    proto = _proto(proto_shape, kernel_size, masks.device if isinstance(masks, torch.Tensor) else None)
    size = _kernel_size(proto, kernel_size)
    _check_masks(masks, size)
    return masks.float(), proto, size


def same_padding(kernel_size: int) -> Tuple[int, int]:
    """(front, back) zero padding that keeps the size at stride 1: ``((k - 1) // 2, k // 2)``."""
    return (kernel_size - 1) // 2, kernel_size // 2


def box_sums(x: torch.Tensor, kernel_size: Tuple[int, int], front: Tuple[int, int]) -> torch.Tensor:
    """Sums over (kh, kw) windows starting ``front`` pixels before each pixel (zeros outside).

    Args:
        x: (B, 1, H, W).
        kernel_size: (kh, kw).
        front: (top, left) offsets; the window of (i, j) covers rows i - top .. i - top + kh - 1.

    Returns:
        (B, 1, H, W) window sums: a running sum along each axis in turn, minus itself shifted by the
        window, so the cost does not depend on kh * kw. Exact for binary masks (integer partial
        sums); for soft masks the float32 rounding of the running sums stays near 1e-7 of the
        sums' size (see tools/benchmarks/iou_encoding_speed.py for a measured bound).
    """
    (kh, kw), (top, left) = kernel_size, front
    padded = F.pad(x, (left + 1, kw - 1 - left, top + 1, kh - 1 - top))
    rows = padded.cumsum(3)
    rows = rows[..., kw:] - rows[..., :-kw]
    sums = rows.cumsum(2)
    return sums[..., kh:, :] - sums[..., :-kh, :]


def _intersect(masks: torch.Tensor, proto: Optional[torch.Tensor], size: Tuple[int, int]) -> torch.Tensor:
    pads = [same_padding(k) for k in size]
    if proto is None:
        return box_sums(masks, size, (pads[0][0], pads[1][0]))
    padded = F.pad(masks, (pads[1][0], pads[1][1], pads[0][0], pads[0][1]))
    return F.conv2d(padded, proto[None, None].to(masks.dtype))


@computed_in_fp32
def intersect_encode(masks: torch.Tensor, proto_shape: Optional[ProtoShape] = None,
                     kernel_size=None, normalize_by: str = 'proto_shape') -> torch.Tensor:
    """Fuzzy intersection of each mask with the proto shape anchored at every pixel.

    Args:
        masks: (B, 1, H, W) masks (cast to float).
        proto_shape: (kh, kw) non-negative template; takes priority over ``kernel_size``.
        kernel_size: int or (kh, kw) of a box of ones, used when ``proto_shape`` is None.
        normalize_by: 'proto_shape' (divide by sum P), 'target' (divide by the mask's sum; an empty
            mask gives 0 instead of the reference's 0/0 = NaN, since its intersection is 0 too) or
            'none'.

    Returns:
        (B, 1, H, W) intersections.
    """
    masks, proto, size = _prepare(masks, proto_shape, kernel_size)
    inter = _intersect(masks, proto, size)
    if normalize_by == 'proto_shape':
        return inter / (proto.sum() if proto is not None else size[0] * size[1])
    if normalize_by == 'target':
        return inter / masks.sum(dim=(2, 3), keepdim=True).clamp(min=torch.finfo(masks.dtype).tiny)
    if normalize_by == 'none':
        return inter
    raise ValueError(f"normalize_by must be 'proto_shape', 'target' or 'none', got {normalize_by!r}")


@computed_in_fp32
def iou_encode(masks: torch.Tensor, proto_shape: Optional[ProtoShape] = None, kernel_size=None,
               smooth: float = 1e-7) -> torch.Tensor:
    """IoU of each mask with the proto shape anchored at every pixel.

    The union counts the whole proto area even where the window leaves the image, so border
    positions score lower; an empty mask gives ``smooth / (sum P + smooth)`` everywhere.

    Args:
        masks: (B, 1, H, W) masks (cast to float; values above 1 are not clipped).
        proto_shape, kernel_size: as :func:`intersect_encode`.
        smooth: eps added to numerator and denominator.

    Returns:
        (B, 1, H, W) IoU values.
    """
    masks, proto, size = _prepare(masks, proto_shape, kernel_size)
    inter = _intersect(masks, proto, size)
    proto_area = proto.sum() if proto is not None else size[0] * size[1]
    union_plus_smooth = (masks.sum(dim=(2, 3), keepdim=True) + proto_area + smooth) - inter
    return inter.add_(smooth).div_(union_plus_smooth)


@computed_in_fp32
def intersect_decode(masks: torch.Tensor, proto_shape: Optional[ProtoShape] = None,
                     kernel_size=None) -> torch.Tensor:
    """Paint the proto shape back, weighted by an encoding: the adjoint of :func:`intersect_encode`
    with ``normalize_by='none'``, divided by sum P (``<Enc(M), E> = sum P * <M, Dec(E)>``).

    Args:
        masks: (B, 1, H, W) encodings (cast to float).
        proto_shape, kernel_size: as :func:`intersect_encode`.

    Returns:
        (B, 1, H, W) decoded soft masks; a 1 x 1 proto is the identity.
    """
    masks, proto, size = _prepare(masks, proto_shape, kernel_size)
    pads = [same_padding(k) for k in size]
    if proto is None:  # the window of (i, j) is the encoder's mirrored: back padding in front
        return box_sums(masks, size, (pads[0][1], pads[1][1])).div_(size[0] * size[1])
    padded = F.pad(masks, (pads[1][1], pads[1][0], pads[0][1], pads[0][0]))
    kernel = torch.flip(proto, dims=(0, 1)) / proto.sum()
    return F.conv2d(padded, kernel[None, None].to(masks.dtype))

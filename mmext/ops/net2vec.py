"""The Net2Vec loss (hybrid_learning's Net2VecLoss, after Fong & Vedaldi, CVPR 2018) as a pure
tensor function.

Shape shorthand: ``B`` batch, ``C`` concepts, ``H x W`` area.

Per instance, with ``t = targets > target_thresh`` (strict) and outputs ``o`` in [0, 1]::

    L = - sum_area [ b t o + (1 - b) (1 - t) (1 - o) ]

minus the b-weighted soft true-positive area plus the (1 - b)-weighted soft true-negative area. The
minus sign is the fix of HL2: hybrid_learning 1 returned the sum itself, a score, and minimising it
trained the probe the wrong way. The gradient is -b where t = 1 and +(1 - b) where t = 0, whatever
o is; the loss is not normalised by the area.
"""
from typing import Callable, Optional, Tuple, Union

import torch

from .precision import computed_in_fp32

Reduction = Union[str, Callable[[torch.Tensor], torch.Tensor]]


def area_axes(ndim: int) -> Tuple[int, ...]:
    """The axes summed per instance: the whole vector (1-D), the whole matrix (2-D), else the last
    two (H, W), so (B, H, W) gives one value per sample and (B, C, H, W) one per sample and concept."""
    if ndim < 1:
        raise ValueError('net2vec_loss needs tensors with at least one dimension')
    return (0,) if ndim == 1 else (1, 0) if ndim == 2 else (ndim - 1, ndim - 2)


@computed_in_fp32
def net2vec_loss(outputs: torch.Tensor, targets: torch.Tensor,
                 factor_pos_class: Union[float, torch.Tensor] = 0.5, reduction: Reduction = 'mean',
                 target_thresh: float = 0.0, weight: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Net2Vec loss of concept outputs against (soft) target masks.

    Args:
        outputs: (..., H, W) outputs o in [0, 1] (probabilities, not logits: the loss is linear in o
            and unbounded below outside [0, 1]).
        targets: same number of dims as ``outputs``; binarized as ``targets > target_thresh``.
        factor_pos_class: b in [0, 1], the weight of the true-positive term; a tensor broadcastable
            to ``outputs`` gives per-element (e.g. per-concept) weights.
        reduction: 'mean' or 'sum' over all per-instance values, 'none', or a callable on them.
        target_thresh: targets strictly above it are positive.
        weight: optional per-element weights broadcastable to ``outputs`` (0 leaves an element, e.g.
            an ignored pixel, out of both terms).

    Returns:
        The reduced loss; with 'none', the per-instance losses (the input shape without the area
        axes, see :func:`area_axes`).
    """
    b = torch.as_tensor(factor_pos_class, dtype=outputs.dtype, device=outputs.device)
    if ((b < 0) | (b > 1)).any():
        raise ValueError(f'factor_pos_class must lie in [0, 1], got {factor_pos_class}')
    if outputs.dim() != targets.dim():
        raise ValueError(f'outputs and targets need the same number of dims, got {outputs.dim()} and '
                         f'{targets.dim()}')
    t = (targets > target_thresh).to(outputs.dtype)
    terms = b * t * outputs + (1 - b) * (1 - t) * (1 - outputs)
    if weight is not None:
        terms = terms * weight
    per_instance = -terms.sum(dim=area_axes(outputs.dim()))
    if callable(reduction):
        return reduction(per_instance)
    if reduction == 'mean':
        return per_instance.mean()
    if reduction == 'sum':
        return per_instance.sum()
    if reduction == 'none':
        return per_instance
    raise ValueError(f"reduction must be 'mean', 'sum', 'none' or a callable, got {reduction!r}")


def concept_masks(labels: torch.Tensor, num_channels: int,
                  ignore_index: int = 255) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-channel binary concept masks of a label map, in mmseg's channel conventions.

    Args:
        labels: (N, H, W) integer label ids.
        num_channels: C, the channels of the logits: C > 1 gives one mask per class id 0..C-1, and
            C = 1 (mmseg's binary heads, ``out_channels=1``) gives the mask of label 1.
        ignore_index: label of pixels that belong to no mask.

    Returns:
        ``(masks, labelled)``: (N, C, H, W) bool masks (False where ignored) and (N, 1, H, W) bool,
        True where the label is not ``ignore_index``.
    """
    labelled = (labels != ignore_index).unsqueeze(1)
    if num_channels == 1:
        return (labels == 1).unsqueeze(1) & labelled, labelled
    ids = torch.arange(num_channels, device=labels.device).view(1, -1, 1, 1)
    return (labels.unsqueeze(1) == ids) & labelled, labelled

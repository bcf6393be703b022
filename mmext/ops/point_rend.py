"""PointRend (Kirillov et al., CVPR 2020) point primitives as pure tensor functions.

Shape shorthand: ``B`` batch, ``C`` channels, ``K`` classes, ``H x W`` map size, ``P`` points.
Point coordinates are (x, y) in [0, 1] x [0, 1] of the whole map, the convention of detectron2's
``point_sample`` and of ``mmcv.ops.point_sample``; no compiled op is needed, only
``torch.nn.functional.grid_sample``.

Training picks points biased to uncertain regions
(:func:`uncertain_point_coords_with_randomness`); inference refines the most uncertain pixels of a
x2-upsampled map (:func:`uncertain_point_indices_on_grid`, :func:`scatter_point_logits`).
"""
from typing import Callable, Tuple

import torch
import torch.nn.functional as F


def point_sample(feats: torch.Tensor, coords: torch.Tensor, align_corners: bool = False,
                 mode: str = 'bilinear') -> torch.Tensor:
    """Sample feature maps at continuous points (zero padding outside the map).

    Args:
        feats: (B, C, H, W) feature map.
        coords: (B, P, 2) points, (x, y) in [0, 1] x [0, 1].
        align_corners: grid_sample's convention; with False (the default) the pixel centres are at
            ((j + 0.5) / W, (i + 0.5) / H).
        mode: 'bilinear' for features and logits, 'nearest' for labels.

    Returns:
        (B, C, P) sampled values, in the wider of the two input dtypes: fp16/bf16 features are
        sampled in fp32 at fp32 coords, since rounding the coords instead would move a point by up
        to 2 pixels of a 2048-wide bf16 map.
    """
    dtype = torch.promote_types(feats.dtype, coords.dtype)
    grid = 2.0 * coords.unsqueeze(2).to(dtype) - 1.0
    return F.grid_sample(feats.to(dtype), grid, mode=mode, padding_mode='zeros',
                         align_corners=align_corners).squeeze(3)


def point_uncertainty(logits: torch.Tensor) -> torch.Tensor:
    """Uncertainty of class logits: second-highest minus highest logit, <= 0, 0 at a tie.

    Args:
        logits: (B, K, ...) class logits, a map (B, K, H, W) or points (B, K, P). For K = 1 (one
            sigmoid logit) it is ``-|logit|``, detectron2's class-agnostic form: 0 at probability 1/2.

    Returns:
        (B, 1, ...) uncertainty; the most uncertain locations have the highest value.
    """
    if logits.shape[1] == 1:
        return -logits.abs()
    top2 = logits.topk(2, dim=1).values
    return top2[:, 1:2] - top2[:, 0:1]


def training_point_counts(num_points: int, oversample_ratio: float,
                          importance_sample_ratio: float) -> Tuple[int, int, int]:
    """How many points training selection draws and keeps.

    Args:
        num_points: N, points per image.
        oversample_ratio: k >= 1, candidates per kept point.
        importance_sample_ratio: beta in [0, 1], share of the N points taken by uncertainty.

    Returns:
        (candidates, uncertain, random) = (int(k * N), int(beta * N), N - int(beta * N)).
    """
    if num_points < 1:
        raise ValueError(f'num_points must be >= 1, got {num_points}')
    if oversample_ratio < 1:
        raise ValueError(f'oversample_ratio must be >= 1, got {oversample_ratio}')
    if not 0 <= importance_sample_ratio <= 1:
        raise ValueError(f'importance_sample_ratio must lie in [0, 1], got {importance_sample_ratio}')
    num_uncertain = int(importance_sample_ratio * num_points)
    return int(oversample_ratio * num_points), num_uncertain, num_points - num_uncertain


@torch.no_grad()
def uncertain_point_coords_with_randomness(
        logits: torch.Tensor, num_points: int = 2048, oversample_ratio: float = 3,
        importance_sample_ratio: float = 0.75, align_corners: bool = False,
        uncertainty: Callable[[torch.Tensor], torch.Tensor] = point_uncertainty) -> torch.Tensor:
    """Training points: the most uncertain of ``k * N`` uniform candidates plus fresh uniform ones.

    The uncertainty is measured on logits *sampled at the candidates*, not interpolated from a map
    of per-pixel uncertainties: midway between logits (+1, -1) and (-1, +1) the sampled logits tie
    (uncertainty 0), while interpolating the uncertainties would give -2.

    Args:
        logits: (B, K, H, W) coarse class logits.
        num_points: N, points per image.
        oversample_ratio: k >= 1, uniform candidates per kept point.
        importance_sample_ratio: beta in [0, 1]; the top ``int(beta * N)`` candidates by uncertainty
            are kept and ``N - int(beta * N)`` fresh uniform points are appended.
        align_corners: convention of :func:`point_sample`.
        uncertainty: (B, K, P) -> (B, 1, P) score, higher is more uncertain.

    Returns:
        (B, N, 2) coords in [0, 1); the uncertain points come first.
    """
    num_candidates, num_uncertain, num_random = training_point_counts(
        num_points, oversample_ratio, importance_sample_ratio)
    batch_size = logits.shape[0]
    candidates = torch.rand(batch_size, num_candidates, 2, device=logits.device)
    scores = uncertainty(point_sample(logits, candidates, align_corners))[:, 0]
    top = scores.topk(num_uncertain, dim=1).indices
    coords = candidates.gather(1, top.unsqueeze(2).expand(-1, -1, 2))
    if num_random:
        fresh = torch.rand(batch_size, num_random, 2, device=logits.device)
        coords = torch.cat([coords, fresh], dim=1)
    return coords


def grid_indices_to_coords(indices: torch.Tensor, height: int, width: int,
                           align_corners: bool = False, mmseg_rounding: bool = False) -> torch.Tensor:
    """Flat pixel indices to the (x, y) coords of the pixel centres.

    Args:
        indices: (B, P) flat indices into an H x W map (row-major).
        height: H.
        width: W.
        align_corners: the convention of :func:`point_sample` the coords are for.
        mmseg_rounding: with ``align_corners=False``, compute the centres as mmseg's
            ``PointHead.get_points_test`` does, ``0.5 / W + (i mod W) * (1 / W)`` in fp32 with the
            step rounded first; it differs from the correctly rounded ``((i mod W) + 0.5) / W`` in
            the last bit at some pixels (22 of 45 columns), which moves the sampled values and can
            flip near-ties in the top-k of the next subdivision step.

    Returns:
        (B, P, 2) coords, ``((i mod W) + 0.5) / W, (i div W + 0.5) / H`` for ``align_corners=False``
        and ``(i mod W) / (W - 1), (i div W) / (H - 1)`` for True (0 for a size of 1);
        :func:`point_sample` with the same convention returns the map's values there exactly
        (up to grid_sample's own rounding; mmseg's rounding adds one more).
    """
    rows = torch.div(indices, width, rounding_mode='floor')
    # Not ``indices % width``: the ONNX exporter cannot translate a remainder by a symbolic width.
    cols = (indices - rows * width).float()
    rows = rows.float()
    if align_corners:
        return torch.stack([cols / max(width - 1, 1), rows / max(height - 1, 1)], dim=2)
    if mmseg_rounding:
        w_step, h_step = 1.0 / width, 1.0 / height
        return torch.stack([w_step / 2.0 + cols * w_step, h_step / 2.0 + rows * h_step], dim=2)
    return torch.stack([(cols + 0.5) / width, (rows + 0.5) / height], dim=2)


@torch.no_grad()
def uncertain_point_indices_on_grid(
        logits: torch.Tensor, num_points: int, align_corners: bool = False,
        uncertainty: Callable[[torch.Tensor], torch.Tensor] = point_uncertainty,
        mmseg_rounding: bool = False, pad_to_num_points: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
    """Inference points: the ``min(H * W, num_points)`` most uncertain pixels of a logit map.

    With ``pad_to_num_points`` exactly ``num_points`` indices are returned, those past the
    ``min(H * W, num_points)`` real ones being padding ``>= H * W`` (coords below the map, which
    :func:`point_sample` reads as 0) for :func:`scatter_point_logits` to drop: the ONNX exporter can
    express a ``topk`` whose k does not depend on a symbolic H * W, not ``min(H * W, num_points)``.

    Args:
        logits: (B, K, H, W) class logits (the x2-upsampled map of a subdivision step).
        num_points: the requested number of points.
        align_corners: convention of the returned coords, see :func:`grid_indices_to_coords`.
        uncertainty: (B, K, H, W) -> (B, 1, H, W) score, higher is more uncertain.
        mmseg_rounding: pixel centres rounded as mmseg's, see :func:`grid_indices_to_coords`.
        pad_to_num_points: return ``num_points`` indices, padded as above.

    Returns:
        indices: (B, P) flat indices, P = min(H * W, num_points) (``num_points`` if padded).
        coords: (B, P, 2) their pixel-centre coords, see :func:`grid_indices_to_coords`.
    """
    batch_size, _, height, width = logits.shape
    scores = uncertainty(logits).view(batch_size, height * width)
    if pad_to_num_points:  # -inf scores rank below every pixel, so the pixels chosen are the same
        scores = torch.cat([scores, scores.new_full((batch_size, num_points), float('-inf'))], dim=1)
        indices = scores.topk(num_points, dim=1).indices
    else:
        indices = scores.topk(min(height * width, num_points), dim=1).indices
    return indices, grid_indices_to_coords(indices, height, width, align_corners, mmseg_rounding)


def scatter_point_logits(logits: torch.Tensor, indices: torch.Tensor, point_logits: torch.Tensor,
                         inplace: bool = False, num_padding: int = 0) -> torch.Tensor:
    """Write point predictions into a logit map; every other pixel keeps its value.

    Args:
        logits: (B, K, H, W) map.
        indices: (B, P) flat pixel indices.
        point_logits: (B, K, P) logits of those pixels, written in ``logits``' dtype (under autocast
            the point MLP gives fp16/bf16 while an fp32 coarse map stays fp32).
        inplace: write into ``logits`` (contiguous) instead of a copy: for a map the caller has just
            made, such as a subdivision step's upsampled logits, it saves copying the whole map
            (160 MB for 19 classes at 1024 x 2048).
        num_padding: indices in ``[H * W, H * W + num_padding)`` are padding (see
            :func:`uncertain_point_indices_on_grid`) and dropped; with padding there is a copy.

    Returns:
        (B, K, H, W) map: ``logits`` itself if ``inplace`` and no padding, else a new one.
    """
    batch_size, num_classes, height, width = logits.shape
    point_logits = point_logits.to(logits.dtype)
    if num_padding:
        flat = torch.cat([logits.reshape(batch_size, num_classes, height * width),
                          logits.new_zeros(batch_size, num_classes, num_padding)], dim=2)
        flat = flat.scatter(2, indices.unsqueeze(1).expand(-1, num_classes, -1), point_logits)
        return flat[:, :, :height * width].reshape(batch_size, num_classes, height, width)
    flat = logits.view(batch_size, num_classes, height * width) if inplace else \
        logits.reshape(batch_size, num_classes, height * width)
    scatter = flat.scatter_ if inplace else flat.scatter
    out = scatter(2, indices.unsqueeze(1).expand(-1, num_classes, -1), point_logits)
    return out.view(batch_size, num_classes, height, width)


def point_labels(seg_label: torch.Tensor, coords: torch.Tensor,
                 align_corners: bool = False) -> torch.Tensor:
    """Ground-truth class of each point: nearest-neighbour sampling, so ignore labels stay as is.

    Args:
        seg_label: (B, H, W) or (B, 1, H, W) integer labels (ignore_index included).
        coords: (B, P, 2) points in [0, 1] x [0, 1].
        align_corners: convention of :func:`point_sample`.

    Returns:
        (B, P) int64 labels.
    """
    if seg_label.dim() == 3:
        seg_label = seg_label.unsqueeze(1)
    return point_sample(seg_label.float(), coords, align_corners, mode='nearest')[:, 0].long()

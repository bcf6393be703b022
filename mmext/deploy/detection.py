"""Dense-detector post-processing as tensor-only functions the dynamo exporter can trace with a dynamic
batch and size: mmdet's ``_predict_by_feat_single`` and ``_bbox_post_process`` (per-level top
``nms_pre``, score threshold, decoding, clipping, ``min_bbox_size``, class-aware NMS, top
``max_per_img``) for a whole batch, with NMS as ONNX ``NonMaxSuppression``.

Shape shorthand: ``B`` batch, ``C`` classes, ``N`` (anchor, class) pairs of a level, ``K`` candidates
of all levels, ``M`` boxes kept per image (``max_per_img``), ``S`` boxes NMS selects in the batch.

Every intermediate has a size that does not depend on the data: a level's candidates are its top
``nms_pre`` pairs with ``-inf`` scores padding the rest, and the kept boxes are padded to ``M`` with
label -1, score 0 and box 0, so the same graph serves any input size.
"""
from typing import Callable, List, Sequence, Tuple

import torch
import torch.nn.functional as F

# Scores NMS never selects: below any score threshold of sigmoid scores.
EXCLUDED_SCORE = -1.0


@torch.library.custom_op('mmext::multiclass_nms', mutates_args=())
def multiclass_nms(boxes: torch.Tensor, scores: torch.Tensor, max_per_class: int, iou_threshold: float,
                   score_threshold: float) -> torch.Tensor:
    """ONNX ``NonMaxSuppression`` (``center_point_box=0``): greedy NMS of every (image, class).

    A box suppresses the lower-scored boxes of its class whose IoU with it exceeds
    ``iou_threshold``; only scores above ``score_threshold`` take part, as in mmcv's ``nms`` (which
    this eager implementation runs) and mmdet's score filter.

    Args:
        boxes: (B, K, 4) x1y1x2y2 boxes.
        scores: (B, C, K) per-class scores.
        max_per_class: at most this many boxes kept per image and class.

    Returns:
        (S, 3) int64 rows (image, class, box index), per image and class in descending score.
    """
    from mmcv.ops import nms
    selected = []
    for image, (image_boxes, image_scores) in enumerate(zip(boxes, scores)):
        for label, class_scores in enumerate(image_scores):
            candidates = (class_scores > score_threshold).nonzero().flatten()
            if not len(candidates):
                continue
            _, keep = nms(image_boxes[candidates], class_scores[candidates], iou_threshold)
            keep = candidates[keep[:max_per_class]]
            rows = [torch.full_like(keep, image), torch.full_like(keep, label), keep]
            selected.append(torch.stack(rows, 1))
    return torch.cat(selected) if selected else boxes.new_zeros((0, 3), dtype=torch.int64)


@multiclass_nms.register_fake
def _(boxes, scores, max_per_class, iou_threshold, score_threshold):
    return boxes.new_empty((torch.library.get_ctx().new_dynamic_size(), 3), dtype=torch.int64)


def multiclass_nms_onnx(boxes, scores, max_per_class: int, iou_threshold: float, score_threshold: float):
    """The ONNX translation of :func:`multiclass_nms` (an onnxscript function for
    ``torch.onnx.export(custom_translation_table=...)``)."""
    from onnxscript import opset18 as op
    return op.NonMaxSuppression(boxes, scores, op.Constant(value_int=max_per_class),
                                op.Constant(value_float=iou_threshold),
                                op.Constant(value_float=score_threshold), center_point_box=0)


# Ops of the exported graph that torch's ONNX registry does not know, with their translations.
ONNX_TRANSLATIONS = {torch.ops.mmext.multiclass_nms.default: multiclass_nms_onnx}


def pad_to_multiple(images: torch.Tensor, divisor: int) -> torch.Tensor:
    """(B, 3, H, W) -> (B, 3, H', W'), zero-padded at the bottom and right to multiples of
    ``divisor``, as mmengine's ``ImgDataPreprocessor`` pads normalised images (``pad_value=0``)."""
    if divisor <= 1:
        return images
    height, width = images.shape[2:]
    pad_width, pad_height = (divisor - width % divisor) % divisor, (divisor - height % divisor) % divisor
    return F.pad(images, (0, pad_width, 0, pad_height))


def level_candidates(scores: torch.Tensor, nms_pre: int,
                     score_thr: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """mmdet's ``filter_scores_and_topk`` for a batch, at a fixed size: the top ``nms_pre`` scores
    above ``score_thr``.

    Args:
        scores: (B, N) scores of a level's (anchor, class) pairs, flattened anchor-major.
        nms_pre: candidates per level; <= 0 keeps all N.

    Returns:
        scores: (B, k) descending, ``-inf`` where fewer than k pairs pass the threshold;
            k = ``nms_pre``, or N when ``nms_pre`` <= 0.
        indices: (B, k) their indices in N (0 for the ``-inf`` padding).
    """
    scores = scores.masked_fill(scores <= score_thr, float('-inf'))
    if nms_pre <= 0:
        indices = torch.arange(scores.shape[1], device=scores.device).expand_as(scores)
        return scores, indices
    # -inf padding: a topk whose k does not depend on the symbolic level size picks the same pairs.
    padded = torch.cat([scores, scores.new_full((scores.shape[0], nms_pre), float('-inf'))], dim=1)
    scores, indices = padded.topk(nms_pre, dim=1)
    return scores, torch.where(torch.isfinite(scores), indices, torch.zeros_like(indices))


def gather_rows(values: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """(B, N, D) values and (B, k) indices -> (B, k, D) rows."""
    return values.gather(1, indices.unsqueeze(-1).expand(-1, -1, values.shape[-1]))


def dense_candidates(level_scores: Sequence[torch.Tensor], level_deltas: Sequence[torch.Tensor],
                     level_priors: Sequence[torch.Tensor], nms_pre: int, score_thr: float
                     ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every level's candidates, concatenated in level order.

    Args:
        level_scores: per level (B, A, C) class scores (after the sigmoid), A anchors.
        level_deltas: per level (B, A, 4) box deltas.
        level_priors: per level (A, 4) anchors.

    Returns:
        scores (B, K) (``-inf`` for padding), labels (B, K), deltas (B, K, 4), priors (B, K, 4).
    """
    all_scores, all_labels, all_deltas, all_priors = [], [], [], []
    for scores, deltas, priors in zip(level_scores, level_deltas, level_priors):
        num_classes = scores.shape[-1]
        scores, indices = level_candidates(scores.flatten(1), nms_pre, score_thr)
        anchors = torch.div(indices, num_classes, rounding_mode='floor')
        all_scores.append(scores)
        all_labels.append(indices - anchors * num_classes)
        all_deltas.append(gather_rows(deltas, anchors))
        all_priors.append(gather_rows(priors.unsqueeze(0).expand(deltas.shape[0], -1, -1), anchors))
    return (torch.cat(all_scores, 1), torch.cat(all_labels, 1), torch.cat(all_deltas, 1),
            torch.cat(all_priors, 1))


def nms_scores(scores: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(B, K) scores and labels -> (B, C, K) per-class scores for ``NonMaxSuppression``: a candidate's
    score in its class, :data:`EXCLUDED_SCORE` elsewhere and for invalid (``-inf``) candidates."""
    classes = torch.arange(num_classes, device=labels.device).view(1, -1, 1)
    mine = (labels.unsqueeze(1) == classes) & torch.isfinite(scores).unsqueeze(1)
    return torch.where(mine, scores.unsqueeze(1), torch.full_like(scores.unsqueeze(1), EXCLUDED_SCORE))


def top_kept(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, selected: torch.Tensor,
             max_per_img: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The ``max_per_img`` best boxes NMS kept, per image in descending score, padded.

    Args:
        boxes: (B, K, 4); scores: (B, K); labels: (B, K).
        selected: (S, 3) rows (image, class, candidate) of :func:`multiclass_nms`.

    Returns:
        boxes (B, M, 4), scores (B, M), labels (B, M); padding has box 0, score 0, label -1.
    """
    kept = torch.zeros_like(scores, dtype=torch.bool).index_put(
        (selected[:, 0], selected[:, 2]), torch.ones_like(selected[:, 0], dtype=torch.bool))
    kept_scores = torch.where(kept, scores, torch.full_like(scores, float('-inf')))
    if kept_scores.shape[1] < max_per_img:
        kept_scores = torch.cat([kept_scores, kept_scores.new_full(
            (kept_scores.shape[0], max_per_img - kept_scores.shape[1]), float('-inf'))], dim=1)
    top_scores, indices = kept_scores.topk(max_per_img, dim=1)
    valid = torch.isfinite(top_scores)
    indices = torch.where(valid, indices, torch.zeros_like(indices))
    top_boxes = torch.where(valid.unsqueeze(-1), gather_rows(boxes, indices),
                            torch.zeros_like(boxes[:, :1]))
    top_labels = torch.where(valid, labels.gather(1, indices), torch.full_like(indices, -1))
    return top_boxes, torch.where(valid, top_scores, torch.zeros_like(top_scores)), top_labels


def detect(level_scores: List[torch.Tensor], level_deltas: List[torch.Tensor],
           level_priors: List[torch.Tensor], decode: Callable, img_shape, cfg
           ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """mmdet's dense-head prediction (sigmoid scores, no score factors, ``rescale=False``) for a batch.

    Args:
        level_scores, level_deltas, level_priors: see :func:`dense_candidates`.
        decode: ``(priors (P, 4), deltas (P, 4), max_shape) -> (P, 4)`` boxes, the head's
            ``bbox_coder.decode``.
        img_shape: (H, W) the boxes are clipped to.
        cfg: the head's ``test_cfg`` (``nms_pre``, ``score_thr``, ``min_bbox_size``, ``nms``,
            ``max_per_img``).

    Returns:
        boxes (B, M, 4), scores (B, M), labels (B, M), see :func:`top_kept`.
    """
    score_thr = cfg.get('score_thr', 0)
    scores, labels, deltas, priors = dense_candidates(level_scores, level_deltas, level_priors,
                                                      cfg.get('nms_pre', -1), score_thr)
    batch_size, num_candidates = scores.shape
    boxes = decode(priors.reshape(-1, 4), deltas.reshape(-1, 4), max_shape=img_shape)
    boxes = boxes.reshape(batch_size, num_candidates, 4)
    if cfg.get('min_bbox_size', -1) >= 0:
        widths, heights = boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]
        small = (widths <= cfg['min_bbox_size']) | (heights <= cfg['min_bbox_size'])
        scores = scores.masked_fill(small, float('-inf'))
    max_per_img = cfg['max_per_img']
    # A class keeps at most max_per_img boxes of an image in the end, so NMS need not select more.
    selected = multiclass_nms(boxes, nms_scores(scores, labels, level_scores[0].shape[-1]),
                              max_per_img, float(cfg['nms']['iou_threshold']), float(score_thr))
    return top_kept(boxes, scores, labels, selected, max_per_img)

"""Every check of mmext, as pure functions: the one home for the messages that turn a config that does
not fit the model or the data into an error naming what to change, instead of a shape error deep inside a
convolution, an index error inside a loss or a silently wrong metric.

Where they run: config checks in the classes' ``__init__`` (or, for ``train_cfg``/``test_cfg``, which
mmseg passes at call time, where the config is read); data checks once per training batch in the class
check hooks (``SegClassCheckHook``, ``DetClassCheckHook``), never again inside a head or a loss (each
costs a host synchronisation on a GPU). Each takes ``owner`` (who checks, the first word of the message)
and, where the fix depends on the caller, ``fix`` (what to change, its last words).

Shape shorthand: ``N`` boxes, ``B`` images, ``K`` classes.
"""
from typing import Any, Iterable, Optional, Sequence, Tuple, Union

import torch


class ClassCountError(ValueError, AssertionError):
    """A head's ``num_classes`` differs from the dataset's classes.

    A ``ValueError`` like every mmext check, and an ``AssertionError`` like mmdet's
    ``NumClassCheckHook`` raises, so that code written for either catches it.
    """


def check_class_count(heads: Iterable[Tuple[str, int]], classes: Optional[Sequence[str]], split: str,
                      dataset: str, fix: str) -> None:
    """Raise :class:`ClassCountError` unless every head predicts ``len(classes)`` classes.

    Args:
        heads: (name in the model, num_classes) of every head that predicts the dataset's classes.
        classes: the dataset's ``metainfo['classes']``; None (not declared) skips the check.
        split: 'train', 'val' or 'test'.
        dataset: the dataset's type name.
        fix: where to set num_classes, e.g. 'in every decode and auxiliary head'.
    """
    if classes is None:
        return
    for name, num_classes in heads:
        if num_classes != len(classes):
            raise ClassCountError(
                f'model.{name}.num_classes={num_classes}, but the {split} dataset ({dataset}) has '
                f'{len(classes)} classes {tuple(classes)}; set num_classes={len(classes)} {fix}.')


def check_label_range(labels: torch.Tensor, num_classes: int, owner: str, fix: str,
                      ignore_index: Optional[int] = None) -> None:
    """Raise ``ValueError`` unless every label (other than ``ignore_index``) lies in 0..num_classes-1.

    Args:
        labels: integer labels of any shape.
        num_classes: how many classes the labels may index.
        owner: who checks (a head or loss type).
        fix: what to change, e.g. "set the heads' num_classes to the number of classes of the dataset".
        ignore_index: a label excluded from the check (mmseg's unlabelled pixels).
    """
    valid = labels if ignore_index is None else labels[labels != ignore_index]
    if not valid.numel():
        return
    low, high = int(valid.min()), int(valid.max())
    if low < 0 or high >= num_classes:
        excluded = '' if ignore_index is None else f' (without ignore_index={ignore_index})'
        raise ValueError(
            f'{owner}: the ground-truth label {high if high >= num_classes else low} is out of range: '
            f'labels span {low}..{high}{excluded}, but num_classes={num_classes} allows '
            f'0..{num_classes - 1}; {fix}.')


def check_boxes(boxes: torch.Tensor, owner: str) -> None:
    """Raise ``ValueError`` for boxes that are not (x1, y1, x2, y2) (NaN and Inf coordinates are
    ``FiniteCheckHook``'s to refuse, with the image's file name).

    Args:
        boxes: (N, 4) ground-truth boxes; zero width or height passes (the caller decides).
        owner: who checks.
    """
    if (boxes[:, 2] < boxes[:, 0]).any() or (boxes[:, 3] < boxes[:, 1]).any():
        raise ValueError(f'{owner}: a ground-truth box has x2 < x1 or y2 < y1; boxes must be '
                         '(x1, y1, x2, y2), not (x, y, w, h).')


def check_feature_channels(feats: Union[torch.Tensor, Sequence[torch.Tensor]],
                           in_channels: Union[int, Sequence[int]], in_index, owner: str) -> None:
    """Raise ``ValueError`` if the features a decode head selected do not have ``in_channels`` channels.

    Args:
        feats: the head's input after mmseg's ``_transform_inputs``: one (B, C, H, W) map, or a list of
            them for ``input_transform='multiple_select'`` (then ``in_channels`` is a list).
        in_channels: the head's ``in_channels``.
        in_index: the head's ``in_index`` (named in the message).
        owner: the head's type name.
    """
    if isinstance(feats, torch.Tensor):
        found, expected = feats.shape[1], in_channels
    else:
        found, expected = [f.shape[1] for f in feats], list(in_channels)
    if found != expected:
        raise ValueError(
            f'{owner}: decode_head.in_channels={expected}, but the input feature selected by '
            f'in_index={in_index} has {found} channels; set in_channels to {found} (or fix in_index / '
            'input_transform).')


def check_coarse_logits(prev_output: Any, owner: str, first_stage: str,
                        num_classes: Optional[int] = None) -> None:
    """Raise if a cascade head did not get the coarse logits of a first stage.

    A plain ``EncoderDecoder`` (or a cascade whose first stage is this head) calls ``loss`` and
    ``predict`` without ``prev_output``, so the data samples or image metas arrive in its place.

    Args:
        prev_output: what the head got as ``prev_output``; must be a (B, K, h, w) tensor.
        owner: the cascade head's type name.
        first_stage: the head type to suggest as ``decode_head[0]``.
        num_classes: when given, the K the coarse logits must have.
    """
    if not isinstance(prev_output, torch.Tensor):
        raise TypeError(
            f'{owner} needs the coarse logits of a previous decode head: use it as the last stage '
            f"of model=dict(type='CascadeEncoderDecoder', num_stages=2, "
            f"decode_head=[dict(type='{first_stage}', ...), dict(type='{owner}', ...)]).")
    if num_classes is not None and prev_output.shape[1] != num_classes:
        raise ValueError(
            f'{owner}: the coarse logits of decode_head[0] have {prev_output.shape[1]} channels, but '
            f'num_classes={num_classes}; give both stages the same num_classes.')


def check_required_keys(cfg: Optional[dict], keys: Sequence[str], owner: str, where: str,
                        example: str) -> None:
    """Raise ``KeyError`` naming ``where.key`` for each of ``keys`` missing from ``cfg`` (None: all).

    Args:
        example: the keys with typical values, shown as ``where=dict(example)``.
    """
    missing = [k for k in keys if cfg is None or k not in cfg]
    if missing:
        raise KeyError(f'{owner} needs {where}.{"/".join(missing)}; for instance {where}=dict({example})')


def check_no_init_override(init_cfg: Any, layer: str, owner: str, why: str) -> None:
    """Raise ``ValueError`` if ``init_cfg`` (a dict, a list of them or None) overrides the module named
    ``layer`` (``override=dict(name=layer, ...)``), which ``owner`` does not have; ``why`` ends the
    message with what to do instead."""
    for cfg in init_cfg if isinstance(init_cfg, (list, tuple)) else [init_cfg]:
        overrides = (cfg or {}).get('override') or []
        for override in overrides if isinstance(overrides, (list, tuple)) else [overrides]:
            if override.get('name') == layer:
                raise ValueError(f'{owner}: init_cfg overrides {layer!r}, {why}')

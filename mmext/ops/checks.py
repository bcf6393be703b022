"""Input checks shared by the segmentation and detection plugins, as pure functions.

They turn a config that does not fit the data into an error that names what to change, instead of an
index error inside a loss or a silently wrong metric. Each takes ``owner`` (who checks, the first word
of the message) and, where the fix depends on the caller, ``fix`` (what to change, its last words).

Shape shorthand: ``N`` boxes.
"""
from typing import Iterable, Optional, Sequence, Tuple

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
    """Raise ``ValueError`` for NaN/Inf coordinates or boxes that are not (x1, y1, x2, y2).

    Args:
        boxes: (N, 4) ground-truth boxes; zero width or height passes (the caller decides).
        owner: who checks.
    """
    if not torch.isfinite(boxes).all():
        raise ValueError(f'{owner}: NaN or Inf in the ground-truth boxes; check the annotations.')
    if (boxes[:, 2] < boxes[:, 0]).any() or (boxes[:, 3] < boxes[:, 1]).any():
        raise ValueError(f'{owner}: a ground-truth box has x2 < x1 or y2 < y1; boxes must be '
                         '(x1, y1, x2, y2), not (x, y, w, h).')

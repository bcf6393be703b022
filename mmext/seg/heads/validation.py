"""Checks that turn wrong configs into errors naming the config key, instead of a shape error deep
inside a convolution or an index error inside the loss."""
from typing import Optional, Sequence, Union

import torch

from mmext.ops import checks


def check_feature_channels(feats: Union[torch.Tensor, Sequence[torch.Tensor]], head) -> None:
    """Raise if the (transformed) backbone features do not have ``head.in_channels`` channels.

    Args:
        feats: the input of the head after ``_transform_inputs``: one (B, C, H, W) map, or a list
            of them for ``input_transform='multiple_select'`` (then ``in_channels`` is a list).
        head: an mmseg ``BaseDecodeHead``.
    """
    if isinstance(feats, torch.Tensor):
        found, expected = feats.shape[1], head.in_channels
    else:
        found, expected = [f.shape[1] for f in feats], list(head.in_channels)
    if found != expected:
        raise ValueError(
            f'{type(head).__name__}: decode_head.in_channels={expected}, but the input '
            f'feature selected by in_index={head.in_index} has {found} channels; set '
            f'in_channels to {found} (or fix in_index / input_transform).')


def check_label_range(seg_label: torch.Tensor, head) -> None:
    """Raise if a ground-truth label (other than ``ignore_index``) is not below ``num_classes``.

    Args:
        seg_label: integer labels of any shape.
        head: an mmseg ``BaseDecodeHead``.
    """
    checks.check_label_range(
        seg_label, head.num_classes, type(head).__name__, ignore_index=head.ignore_index,
        fix="set the heads' num_classes to the number of classes of the dataset")


def check_coarse_logits(prev_output, head, first_stage: str, num_classes: Optional[int] = None) -> None:
    """Raise if a cascade head did not get the coarse logits of a first stage.

    A plain ``EncoderDecoder`` (or a cascade whose first stage is this head) calls ``loss`` and
    ``predict`` without ``prev_output``, so the data samples or image metas arrive in its place.

    Args:
        prev_output: what the head got as ``prev_output``; must be a (B, K, h, w) tensor.
        head: the cascade head (its type names the error).
        first_stage: the head type to suggest as ``decode_head[0]``.
        num_classes: when given, the K the coarse logits must have.
    """
    name = type(head).__name__
    if not isinstance(prev_output, torch.Tensor):
        raise TypeError(
            f'{name} needs the coarse logits of a previous decode head: use it as the last stage '
            f"of model=dict(type='CascadeEncoderDecoder', num_stages=2, "
            f"decode_head=[dict(type='{first_stage}', ...), dict(type='{name}', ...)]).")
    if num_classes is not None and prev_output.shape[1] != num_classes:
        raise ValueError(
            f'{name}: the coarse logits of decode_head[0] have {prev_output.shape[1]} channels, but '
            f'num_classes={num_classes}; give both stages the same num_classes.')

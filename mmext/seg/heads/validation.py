"""Checks that turn wrong configs into errors naming the config key, instead of a shape error deep
inside a convolution or an index error inside the loss."""
import torch


def check_feature_channels(feats: torch.Tensor, head) -> None:
    """Raise if the (transformed) backbone feature does not have ``head.in_channels`` channels.

    Args:
        feats: (B, C, H, W) input of the head after ``_transform_inputs``.
        head: an mmseg ``BaseDecodeHead``.
    """
    if feats.shape[1] != head.in_channels:
        raise ValueError(
            f'{type(head).__name__}: decode_head.in_channels={head.in_channels}, but the backbone '
            f'feature selected by in_index={head.in_index} has {feats.shape[1]} channels; set '
            f'in_channels to {feats.shape[1]} (or fix in_index / input_transform).')


def check_label_range(seg_label: torch.Tensor, head) -> None:
    """Raise if a ground-truth label (other than ``ignore_index``) is not below ``num_classes``.

    Args:
        seg_label: integer labels of any shape.
        head: an mmseg ``BaseDecodeHead``.
    """
    valid = seg_label[seg_label != head.ignore_index]
    if valid.numel() and (int(valid.max()) >= head.num_classes or int(valid.min()) < 0):
        raise ValueError(
            f'{type(head).__name__}: the ground truth holds label {int(valid.max())} (and '
            f'min {int(valid.min())}), but num_classes={head.num_classes}; set the heads\' '
            f'num_classes to the number of classes of the dataset (ignore_index={head.ignore_index} '
            f'is excluded from this check).')

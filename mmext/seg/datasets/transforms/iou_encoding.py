"""IoU encoding and intersect decoding of masks as pipeline transforms (hybrid_learning's
``IoUEncode`` / ``IntersectDecode`` wrappers with their ``pre_thresh`` / ``post_thresh``)."""
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

from mmext.ops.iou_encoding import intersect_decode, iou_encode, proto_size


class _MaskWindowTransform(BaseTransform):
    """Apply a batched (B, 1, H, W) window op to the (..., H, W) array ``results[key]``.

    Args:
        op: the op, called as ``op(masks)`` with the proto arguments bound.
        key: results key of the input array.
        out_key: results key of the float32 output (same shape as the input).
        pre_thresh: if given, the input is binarised first: 1 where ``> pre_thresh``, else 0.
        post_thresh: if given, the output is binarised the same way.
    """

    def __init__(self, op: Callable[[torch.Tensor], torch.Tensor], key: str, out_key: str,
                 pre_thresh: Optional[float] = None, post_thresh: Optional[float] = None):
        super().__init__()
        self.op, self.key, self.out_key = op, key, out_key
        self.pre_thresh, self.post_thresh = pre_thresh, post_thresh

    def to_masks(self, array: np.ndarray) -> torch.Tensor:
        """The (B, 1, H, W) float masks of an (..., H, W) input."""
        masks = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
        if self.pre_thresh is not None:
            masks = (masks > self.pre_thresh).float()
        return masks.reshape(-1, 1, *array.shape[-2:])

    def transform(self, results: dict) -> dict:
        name = type(self).__name__
        if self.key not in results:
            raise KeyError(f'{name}: the results have no {self.key!r} (keys: {sorted(results)}); set key= '
                           f'to the mask to transform, after the transform that loads it')
        array = np.asarray(results[self.key])
        if array.ndim < 2:
            raise ValueError(f'{name}: {self.key!r} must be an (..., H, W) array, got shape {array.shape}')
        out = self.op(self.to_masks(array))
        if self.post_thresh is not None:
            out = (out > self.post_thresh).float()
        results[self.out_key] = out.reshape(array.shape).numpy()
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(key={self.key!r}, out_key={self.out_key!r}, '
                f'pre_thresh={self.pre_thresh}, post_thresh={self.post_thresh})')


@TRANSFORMS.register_module()
class IoUEncode(_MaskWindowTransform):
    """IoU of a mask with the proto shape anchored at every pixel (:func:`mmext.ops.iou_encode`).

    Reads ``results[key]`` ((H, W) or (..., H, W): a label map, a mask or a stack of masks) and
    writes the float32 IoU map of the same shape to ``results[out_key]``. Pack it yourself to train on
    it: mmseg's ``PackSegInputs`` packs only ``gt_seg_map`` (as integers), so do not write a float map
    there. :class:`~mmext.seg.heads.Net2VecHead` encodes its targets itself, on the batch.

    Args:
        kernel_size (int | tuple): size of a box proto (the common case, and the fast path).
        proto_shape (array-like): (kh, kw) non-negative proto; takes priority over ``kernel_size``.
        smooth (float): eps of the IoU. Default: 1e-7.
        classes (sequence of int): label ids that form the concept (a label map input); None uses the
            values as they are.
        ignore_index (int): label counted as "not the concept" before encoding. Default: 255.
        key (str): input key. Default: 'gt_seg_map'.
        out_key (str): output key. Default: 'gt_iou_map'.
        pre_thresh, post_thresh (float): binarise the input / output at ``> thresh``.
    """

    def __init__(self, kernel_size=None, proto_shape=None, smooth: float = 1e-7,
                 classes: Optional[Sequence[int]] = None, ignore_index: Optional[int] = 255,
                 key: str = 'gt_seg_map', out_key: str = 'gt_iou_map', pre_thresh: Optional[float] = None,
                 post_thresh: Optional[float] = None):
        def encode(masks):
            return iou_encode(masks, proto_shape=proto_shape, kernel_size=kernel_size, smooth=smooth)

        super().__init__(encode, key, out_key, pre_thresh, post_thresh)
        self.classes = None if classes is None else np.asarray(classes)
        self.ignore_index = ignore_index
        proto_size(proto_shape, kernel_size)  # a bad proto fails when the pipeline is built

    def to_masks(self, array: np.ndarray) -> torch.Tensor:
        if self.ignore_index is not None:
            array = np.where(array == self.ignore_index, 0, array)
        if self.classes is not None:
            array = np.isin(array, self.classes)
        return super().to_masks(array)


@TRANSFORMS.register_module()
class IntersectDecode(_MaskWindowTransform):
    """Paint the proto shape back, weighted by an encoding (:func:`mmext.ops.intersect_decode`).

    Reads ``results[key]`` ((..., H, W) encodings, e.g. an IoU map) and writes the float32 decoded
    soft mask of the same shape to ``results[out_key]``.

    Args:
        kernel_size, proto_shape: the proto of the encoding (see :class:`IoUEncode`).
        key (str): input key. Default: 'gt_iou_map'.
        out_key (str): output key. Default: 'gt_decoded_mask'.
        pre_thresh, post_thresh (float): binarise the input / output at ``> thresh``
            (hybrid_learning decodes thresholded IoU maps).
    """

    def __init__(self, kernel_size=None, proto_shape=None, key: str = 'gt_iou_map',
                 out_key: str = 'gt_decoded_mask', pre_thresh: Optional[float] = None,
                 post_thresh: Optional[float] = None):
        def decode(masks):
            return intersect_decode(masks, proto_shape=proto_shape, kernel_size=kernel_size)

        super().__init__(decode, key, out_key, pre_thresh, post_thresh)
        proto_size(proto_shape, kernel_size)


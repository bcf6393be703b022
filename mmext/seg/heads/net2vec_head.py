"""Net2Vec concept probe (Fong & Vedaldi, "Net2Vec: Quantifying and Explaining how Concepts are
Encoded by Filters in Deep Neural Networks", CVPR 2018), trained on IoU-encoded masks as in
hybrid_learning's concept embedding analysis."""
from typing import List, Optional, Tuple

import torch
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.utils import resize
from mmseg.registry import MODELS

from mmext.ops.iou_encoding import intersect_decode, iou_encode, proto_size
from mmext.ops.net2vec import concept_masks
from .decode_loss import sum_loss_decode
from mmext.ops.checks import check_feature_channels

ENCODING_KEYS = ('kernel_size', 'proto_shape', 'smooth')
PROBABILITY_EPS = 1e-6  # decoded probabilities are clamped to [eps, 1 - eps] before their logit


def per_channel(op, maps: torch.Tensor, **kwargs) -> torch.Tensor:
    """Apply a (B, 1, H, W) mask op to every channel of (N, C, H, W) maps."""
    return op(maps.flatten(0, 1).unsqueeze(1), **kwargs).view_as(maps)


def encoded_concept_targets(labels: torch.Tensor, num_channels: int, ignore_index: int,
                            encoding: Optional[dict]) -> Tuple[torch.Tensor, torch.Tensor]:
    """The training targets of a concept probe.

    Args:
        labels: (N, H, W) label ids.
        num_channels: C, see :func:`mmext.ops.concept_masks`.
        ignore_index: label of unlabelled pixels: 0 in the masks, weight 0.
        encoding: keyword arguments of :func:`mmext.ops.iou_encode` (``kernel_size`` or
            ``proto_shape``, ``smooth``), or None for the raw masks.

    Returns:
        ``(targets, weight)``: (N, C, H, W) float IoU maps (or 0/1 masks) and (N, C, H, W) pixel
        weights, 0 where the label is ``ignore_index``.
    """
    masks, labelled = concept_masks(labels, num_channels, ignore_index)
    targets = masks.float()
    if encoding is not None:
        targets = per_channel(iou_encode, targets, **encoding)
    return targets, labelled.float().expand_as(targets)


@MODELS.register_module()
class Net2VecHead(BaseDecodeHead):
    """Net2Vec concept probe: a 1x1 convolution on one backbone level, a sigmoid per concept.

    Each output channel c is a linear concept detector on the ``in_index`` features. With an
    ``encoding`` (the default), channel c is trained to predict the IoU encoding of its concept's
    mask (:func:`mmext.ops.iou_encode`: at each pixel, the IoU of the proto shape placed there with
    the mask) and predicts by intersect-decoding its sigmoid output
    (:func:`mmext.ops.intersect_decode`, which paints the proto back where the probe fires) and
    thresholding. With ``encoding=None`` it is a plain sigmoid probe on the raw masks.

    Concepts follow mmseg's channel conventions: ``out_channels=1`` (with ``num_classes=2``) probes
    one concept, label 1 of a binary dataset (e.g. ``SyntheticShapesDataset(concept='ring')``), and
    ``out_channels=num_classes`` probes every class id as its own concept. Targets are encoded on the
    labels' grid (the padded network input) and the logits are bilinearly upsampled to it, as
    hybrid_learning compares outputs and targets at the target's size; the proto is therefore
    measured in input pixels. To probe a trained network (the Net2Vec setting), freeze the backbone:
    ``backbone=dict(frozen_stages=4, norm_eval=True)`` and load its weights with ``init_cfg``.

    Args:
        in_channels (int): channels of the ``in_index`` feature map.
        encoding (dict | None): ``kernel_size`` (int or (kh, kw) box, the fast path) or
            ``proto_shape`` ((kh, kw) non-negative template) in input pixels, optionally ``smooth``;
            None trains on raw masks. Required, as in hybrid_learning: the proto is a property of
            the concept (its typical extent), not of the head.
        threshold (float): decoded probability above which a pixel is the concept (mmseg's binary
            threshold). Default: 0.5.
        loss_decode (dict): default ``Net2VecLoss`` (binarises the IoU targets at its
            ``target_thresh``); mmseg's ``CrossEntropyLoss(use_sigmoid=True)`` is BCE on them.
        **kwargs: ``BaseDecodeHead`` arguments: ``num_classes``, ``out_channels``, ``in_index``,
            ``ignore_index``, ``align_corners``, ``init_cfg``, ...; ``channels`` is ``in_channels``
            and there is no dropout, since the probe is the 1x1 ``conv_seg`` alone.
    """

    def __init__(self, in_channels: int, encoding: Optional[dict],
                 threshold: float = 0.5, loss_decode=dict(type='Net2VecLoss'), **kwargs):
        for key in ('channels', 'dropout_ratio', 'input_transform'):
            if key in kwargs:
                raise ValueError(f'Net2VecHead is one 1x1 convolution on one feature map: do not set {key}')
        if not isinstance(in_channels, int):
            raise ValueError(
                f'Net2VecHead probes one feature map: in_channels must be an int, got {in_channels}')
        if encoding is not None:
            unknown = set(encoding) - set(ENCODING_KEYS)
            if unknown:
                raise ValueError(f'Net2VecHead: unknown encoding keys {sorted(unknown)}; use {ENCODING_KEYS}')
            proto_size(encoding.get('proto_shape'), encoding.get('kernel_size'))
        super().__init__(in_channels, in_channels, dropout_ratio=0.0, threshold=threshold,
                         loss_decode=loss_decode, **kwargs)
        self.encoding = None if encoding is None else dict(encoding)

    def forward(self, inputs: List[torch.Tensor]) -> torch.Tensor:
        """Multi-level features -> (N, C, h, w) concept logits on the ``in_index`` level's grid."""
        feats = self._transform_inputs(inputs)
        check_feature_channels(feats, self.in_channels, self.in_index, type(self).__name__)
        return self.cls_seg(feats)

    def loss_by_feat(self, seg_logits: torch.Tensor, batch_data_samples) -> dict:
        """``loss_decode`` of the logits, upsampled to the label grid, against the encoded concept
        masks (:func:`encoded_concept_targets`); ``ignore_index`` pixels get weight 0."""
        labels = self._stack_batch_gt(batch_data_samples).squeeze(1)  # (N, H, W)
        targets, weight = encoded_concept_targets(labels, self.out_channels, self.ignore_index, self.encoding)
        seg_logits = resize(seg_logits, size=labels.shape[1:], mode='bilinear',
                            align_corners=self.align_corners)
        if self.out_channels == 1:  # mmseg's binary convention: (N, 1, H, W) logits, (N, H, W) targets
            targets, weight = targets.squeeze(1), weight.squeeze(1)
        return sum_loss_decode(self.loss_decode, seg_logits, targets, weight=weight,
                               ignore_index=self.ignore_index)

    def predict_by_feat(self, seg_logits: torch.Tensor, batch_img_metas: List[dict]) -> torch.Tensor:
        """Logits of the decoded concept probabilities on the input grid, so that mmseg's
        ``sigmoid > threshold`` (or argmax) gives the decoded masks."""
        probs = super().predict_by_feat(seg_logits, batch_img_metas).sigmoid()
        if self.encoding is not None:
            proto = {k: v for k, v in self.encoding.items() if k != 'smooth'}
            probs = per_channel(intersect_decode, probs, **proto)
        return torch.logit(probs.clamp(PROBABILITY_EPS, 1 - PROBABILITY_EPS))

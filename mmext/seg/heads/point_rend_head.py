"""PointRend head (Kirillov et al., "PointRend: Image Segmentation as Rendering", CVPR 2020)."""
from typing import List, Optional, Tuple

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.cascade_decode_head import BaseCascadeDecodeHead
from mmseg.models.losses import accuracy
from mmseg.models.utils import resize
from mmseg.registry import MODELS

from mmext.ops.point_rend import (point_labels, point_sample, scatter_point_logits,
                                  uncertain_point_coords_with_randomness,
                                  uncertain_point_indices_on_grid)
from .decode_loss import sum_loss_decode
from mmext.ops.checks import check_coarse_logits, check_feature_channels, check_required_keys

TRAIN_CFG_KEYS = ('num_points', 'oversample_ratio', 'importance_sample_ratio')
TEST_CFG_KEYS = ('subdivision_steps', 'subdivision_num_points', 'scale_factor')


@MODELS.register_module()
class PointRendHead(BaseCascadeDecodeHead):
    """PointRend: a point MLP that re-predicts the coarse segmentation at its most uncertain points.

    The second stage of a ``CascadeEncoderDecoder`` whose first stage (an ``FPNHead``) gives the
    coarse logits ``prev_output``. Each point's input is its fine features (bilinearly sampled from
    the ``in_index`` feature maps) concatenated with its K coarse logits.

    * Training (``model.train_cfg``: ``num_points``, ``oversample_ratio``,
      ``importance_sample_ratio``): cross-entropy on ``num_points`` points per image, most of them
      chosen by uncertainty, labelled by nearest sampling of the ground truth.
    * Inference (``model.test_cfg``: ``subdivision_steps``, ``subdivision_num_points``,
      ``scale_factor``): each step upsamples the logits, re-predicts the ``subdivision_num_points``
      most uncertain pixels and keeps the upsampled values elsewhere.

    Arguments, parameter names, losses (``pointloss_ce``, ``acc_point``) and test-time logits match
    mmseg's ``PointHead`` (bit for bit with ``align_corners=False``: the refined pixels' centres are
    rounded as mmseg's), so its weights load with ``strict=True``; no ``mmcv.ops`` is needed.
    Unlike mmseg, ``align_corners=True`` is consistent: the refined pixels' coords and the training
    candidates follow it too (mmseg's pixel-centre coords assume False, its default).

    Args:
        num_fcs (int): number of point-MLP layers (1x1 ``Conv1d`` ConvModules). Default: 3.
        coarse_pred_each_layer (bool): re-append the K coarse logits to the input of every layer
            after the first. Default: True.
        conv_cfg, norm_cfg, act_cfg (dict): of the MLP layers. Default: Conv1d, no norm, ReLU.
        **kwargs: ``BaseDecodeHead`` arguments: ``in_channels`` (list, one entry per fine feature
            map), ``in_index``, ``channels`` (MLP width), ``num_classes``, ``dropout_ratio``,
            ``align_corners``, ``loss_decode``, ...
    """

    def __init__(self, num_fcs: int = 3, coarse_pred_each_layer: bool = True,
                 conv_cfg: Optional[dict] = dict(type='Conv1d'), norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = dict(type='ReLU', inplace=False), **kwargs):
        super().__init__(
            input_transform='multiple_select', conv_cfg=conv_cfg, norm_cfg=norm_cfg,
            act_cfg=act_cfg, init_cfg=dict(type='Normal', std=0.01, override=dict(name='fc_seg')),
            **kwargs)
        if self.out_channels != self.num_classes:
            raise ValueError(
                f'PointRendHead predicts num_classes={self.num_classes} logits per point; '
                f'out_channels={self.out_channels} (a binary sigmoid head) is not supported: use '
                f'out_channels=num_classes and a softmax loss.')
        self.num_fcs = num_fcs
        self.coarse_pred_each_layer = coarse_pred_each_layer
        in_channels = sum(self.in_channels) + self.num_classes
        self.fcs = nn.ModuleList()
        for _ in range(num_fcs):
            self.fcs.append(ConvModule(in_channels, self.channels, kernel_size=1, conv_cfg=conv_cfg,
                                       norm_cfg=norm_cfg, act_cfg=act_cfg))
            in_channels = self.channels + (self.num_classes if coarse_pred_each_layer else 0)
        self.fc_seg = nn.Conv1d(in_channels, self.num_classes, kernel_size=1)
        if self.dropout_ratio > 0:
            self.dropout = nn.Dropout(self.dropout_ratio)  # point features are (B, C, P)
        del self.conv_seg

    def cls_seg(self, feat: torch.Tensor) -> torch.Tensor:
        """(B, C, P) MLP features -> (B, K, P) point logits."""
        if self.dropout is not None:
            feat = self.dropout(feat)
        return self.fc_seg(feat)

    def forward(self, fine_point_feats: torch.Tensor, coarse_point_logits: torch.Tensor) -> torch.Tensor:
        """The point MLP: (B, sum(in_channels), P) and (B, K, P) -> (B, K, P) point logits."""
        if not isinstance(fine_point_feats, torch.Tensor):
            raise TypeError(
                "PointRendHead.forward is the point MLP; PointRend's dense output needs test_cfg, so "
                "run the model with mode='predict' (mode='tensor' fails for mmseg's PointHead too).")
        x = torch.cat([fine_point_feats, coarse_point_logits], dim=1)
        for fc in self.fcs:
            x = fc(x)
            if self.coarse_pred_each_layer:
                x = torch.cat([x, coarse_point_logits], dim=1)
        return self.cls_seg(x)

    def point_logits(self, fine_feats: List[torch.Tensor], coarse_logits: torch.Tensor,
                     coords: torch.Tensor) -> torch.Tensor:
        """Run the MLP at points: (B, P, 2) coords -> (B, K, P) logits."""
        fine = torch.cat([point_sample(f, coords, self.align_corners) for f in fine_feats], dim=1)
        return self.forward(fine, point_sample(coarse_logits, coords, self.align_corners))

    def _fine_feats(self, inputs: List[torch.Tensor], prev_output) -> List[torch.Tensor]:
        check_coarse_logits(prev_output, type(self).__name__, first_stage='FPNHead',
                            num_classes=self.num_classes)
        fine_feats = self._transform_inputs(inputs)
        check_feature_channels(fine_feats, self.in_channels, self.in_index, type(self).__name__)
        return fine_feats

    def loss(self, inputs: List[torch.Tensor], prev_output: torch.Tensor,
             batch_data_samples=None, train_cfg=None) -> dict:
        """Point losses on ``train_cfg.num_points`` uncertainty-biased points per image.

        The defaults let a plain ``EncoderDecoder``, which passes no ``prev_output``, reach a clear
        error instead of a missing-argument one.
        """
        fine_feats = self._fine_feats(inputs, prev_output)
        check_required_keys(train_cfg, TRAIN_CFG_KEYS, 'PointRendHead', 'model.train_cfg',
                      'num_points=2048, oversample_ratio=3, importance_sample_ratio=0.75')
        try:
            coords = uncertain_point_coords_with_randomness(
                prev_output, train_cfg['num_points'], train_cfg['oversample_ratio'],
                train_cfg['importance_sample_ratio'], self.align_corners)
        except ValueError as error:
            raise ValueError(f'PointRendHead: model.train_cfg: {error}') from None
        logits = self.point_logits(fine_feats, prev_output, coords)
        return self.loss_by_feat(logits, coords, batch_data_samples)

    def loss_by_feat(self, point_logits: torch.Tensor, coords: torch.Tensor,
                     batch_data_samples) -> dict:
        """``loss_decode`` of (B, K, P) point logits at (B, P, 2) coords (same-named terms summed, see
        :func:`sum_loss_decode`); ignore_index is excluded."""
        labels = point_labels(self._stack_batch_gt(batch_data_samples), coords, self.align_corners)
        losses = sum_loss_decode(self.loss_decode, point_logits, labels, ignore_index=self.ignore_index,
                                 prefix='point')
        losses['acc_point'] = accuracy(point_logits, labels, ignore_index=self.ignore_index)
        return losses

    def subdivide(self, inputs: List[torch.Tensor], prev_output: torch.Tensor,
                  test_cfg) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        """Adaptive subdivision of the coarse logits.

        Each step upsamples the current logits (bilinear, ``scale_factor``), picks the
        ``subdivision_num_points`` most uncertain pixels of the upsampled map, and replaces their
        logits by the MLP's, whose coarse input is always sampled from the *original*
        ``prev_output``.

        Args:
            inputs: multi-level features of the neck.
            prev_output: (B, K, h, w) coarse logits.
            test_cfg: with ``subdivision_steps``, ``subdivision_num_points`` and ``scale_factor``.

        Returns:
            refined: (B, K, h * s^steps, w * s^steps) logits.
            coords: per step, the (B, P, 2) refined points in [0, 1] x [0, 1].
        """
        fine_feats = self._fine_feats(inputs, prev_output)
        check_required_keys(test_cfg, TEST_CFG_KEYS, 'PointRendHead', 'model.test_cfg',
                      "mode='whole', subdivision_steps=2, subdivision_num_points=8192, scale_factor=2")
        steps, num_points = test_cfg['subdivision_steps'], test_cfg['subdivision_num_points']
        if not (isinstance(steps, int) and steps >= 0 and isinstance(num_points, int) and num_points >= 1):
            raise ValueError('PointRendHead: model.test_cfg needs an int subdivision_steps >= 0 and an int '
                             f'subdivision_num_points >= 1, got {steps} and {num_points}')
        scale_factor = test_cfg['scale_factor']
        factors = scale_factor if isinstance(scale_factor, (tuple, list)) else [scale_factor]
        if not all(isinstance(f, (int, float)) and f > 0 for f in factors):
            raise ValueError(f'PointRendHead: model.test_cfg.scale_factor must be > 0, got {scale_factor}')
        # The ONNX exporter cannot express topk's k = min(h * w, num_points) for a symbolic map size:
        # exported graphs take num_points padded indices instead (the same pixels are refined).
        padding = num_points if torch.compiler.is_exporting() else 0
        refined, all_coords = prev_output, []
        for _ in range(steps):
            refined = resize(refined, scale_factor=scale_factor, mode='bilinear',
                             align_corners=self.align_corners)
            indices, coords = uncertain_point_indices_on_grid(refined, num_points, self.align_corners,
                                                              mmseg_rounding=True,
                                                              pad_to_num_points=bool(padding))
            refined = scatter_point_logits(  # in place: ``refined`` is resize's new tensor
                refined, indices, self.point_logits(fine_feats, prev_output, coords), inplace=True,
                num_padding=padding)
            all_coords.append(coords[:, :indices.shape[1] - padding] if padding else coords)
        return refined, all_coords

    def predict(self, inputs: List[torch.Tensor], prev_output: torch.Tensor,
                batch_img_metas=None, test_cfg=None) -> torch.Tensor:
        """Subdivided logits resized to the input image, (B, K, H, W)."""
        return self.predict_by_feat(self.subdivide(inputs, prev_output, test_cfg)[0], batch_img_metas)

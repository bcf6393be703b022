"""OCR decode head for mmsegmentation (Object-Contextual Representations, Yuan et al., ECCV 2020)."""
from typing import List, Optional

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.cascade_decode_head import BaseCascadeDecodeHead
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from torch.nn.modules.batchnorm import _BatchNorm

from mmext.ops import object_context, spatial_gather
from mmext.ops.checks import check_coarse_logits, check_feature_channels


class SpatialGather(nn.Module):
    """Object-region representations from pixel features and coarse region logits.

    Args:
        scale (float): temperature of the spatial softmax over the pixels.
    """

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.scale = scale

    def forward(self, feats: torch.Tensor, region_logits: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W), (B, K, H, W) -> (B, C, K, 1)."""
        return spatial_gather(feats, region_logits, self.scale)


class ObjectAttentionBlock(nn.Module):
    """Pixel-region attention followed by the ``[context, pixel]`` bottleneck of OCR.

    Submodule names equal those of mmseg's ``ObjectAttentionBlock`` so that its weights load as they
    are. Unlike mmseg's, ``pool_size > 1`` works as in the official implementation: the pixel
    queries are max-pooled, the context is computed at the pooled size and resized back.

    Args:
        in_channels (int): channels C of the pixel and region features (and of the output).
        key_channels (int): channels Ck of queries, keys and values.
        pool_size (int): max-pool kernel of the pixel queries; 1 means no pooling.
        align_corners (bool): of the bilinear resize of the pooled context.
        conv_cfg, norm_cfg, act_cfg (dict | None): of every 1x1 ConvModule.
    """

    def __init__(self, in_channels: int, key_channels: int, pool_size: int = 1,
                 align_corners: bool = False, conv_cfg=None, norm_cfg=None, act_cfg=None):
        super().__init__()

        def conv1x1(cin, cout):
            return ConvModule(cin, cout, 1, conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)

        # Two conv-norm-act layers for queries and keys, one for values and the output (paper §3.3).
        self.key_project = nn.Sequential(conv1x1(in_channels, key_channels),
                                         conv1x1(key_channels, key_channels))
        self.query_project = nn.Sequential(conv1x1(in_channels, key_channels),
                                           conv1x1(key_channels, key_channels))
        self.value_project = conv1x1(in_channels, key_channels)
        self.out_project = conv1x1(key_channels, in_channels)
        self.bottleneck = conv1x1(2 * in_channels, in_channels)
        self.query_pool = nn.MaxPool2d(pool_size) if pool_size > 1 else None
        self.align_corners = align_corners

    def forward(self, feats: torch.Tensor, region_feats: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) pixel features, (B, C, K, 1) region features -> (B, C, H, W)."""
        query_feats = feats if self.query_pool is None else self.query_pool(feats)
        context = object_context(
            self.query_project(query_feats), self.key_project(region_feats),
            self.value_project(region_feats))
        context = self.out_project(context)
        if self.query_pool is not None:
            context = resize(context, size=feats.shape[2:], mode='bilinear',
                             align_corners=self.align_corners)
        return self.bottleneck(torch.cat([context, feats], dim=1))


@MODELS.register_module()
class ObjectContextHead(BaseCascadeDecodeHead):
    """OCR head: augments each pixel with the features of the object regions it relates to.

    The second stage of a ``CascadeEncoderDecoder``: ``prev_output`` are the coarse logits of the
    first stage (an ``FCNHead`` in OCRNet), whose classes define the soft object regions. Arguments
    and state_dict mirror mmseg's ``OCRHead``, parameter order included, so its model-zoo weights load
    with ``strict=True`` and its optimizer states resume.
    Differs from mmseg in one place: ``scale > 1`` works (mmseg's raises), see
    :class:`ObjectAttentionBlock`.

    Args:
        ocr_channels (int): key channels Ck of the pixel-region attention.
        scale (int): temperature of the spatial softmax of the region logits and, when > 1, the
            max-pool kernel of the pixel queries (the two roles mmseg gives it). Default: 1.
        **kwargs: ``BaseDecodeHead`` arguments (in_channels, channels, num_classes, dropout_ratio,
            norm_cfg, align_corners, loss_decode, ...).
    """

    def __init__(self, ocr_channels: int, scale: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.ocr_channels = ocr_channels
        self.scale = scale
        # mmseg's registration order, which fixes the parameter order: optimizer states of mmseg
        # OCRNet runs resume onto the right parameters, and one seed initialises the same weights.
        self.object_context_block = ObjectAttentionBlock(
            self.channels, ocr_channels, pool_size=scale, align_corners=self.align_corners,
            conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)
        self.spatial_gather_module = SpatialGather(scale)
        self.bottleneck = ConvModule(
            self.in_channels, self.channels, 3, padding=1, conv_cfg=self.conv_cfg,
            norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)

    def forward(self, inputs: List[torch.Tensor],
                prev_output: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Multi-level features and (B, K, h, w) coarse logits -> (B, num_classes, H, W) logits."""
        check_coarse_logits(prev_output, type(self).__name__, first_stage='FCNHead')
        x = self._transform_inputs(inputs)
        check_feature_channels(x, self.in_channels, self.in_index, type(self).__name__)
        feats = self.bottleneck(x)
        if prev_output.shape[2:] != feats.shape[2:]:
            prev_output = resize(prev_output, size=feats.shape[2:], mode='bilinear',
                                 align_corners=self.align_corners)
        self._check_sizes(feats, prev_output)
        region_feats = self.spatial_gather_module(feats, prev_output)
        return self.cls_seg(self.object_context_block(feats, region_feats))

    def _check_sizes(self, feats: torch.Tensor, region_logits: torch.Tensor) -> None:
        """Raise, naming the config, where the features are too small for this head's settings."""
        if self.scale > 1 and min(feats.shape[2:]) < self.scale:
            raise ValueError(
                f'ObjectContextHead: scale={self.scale} max-pools the pixel queries by {self.scale}, but the '
                f'features are only {tuple(feats.shape[2:])}; use scale=1 or larger images.')
        num_regions = region_logits.shape[0] * region_logits.shape[1]
        if self.training and num_regions == 1 and any(
                isinstance(m, _BatchNorm) and not isinstance(m, nn.SyncBatchNorm)
                for m in self.object_context_block.key_project.modules()):
            raise ValueError(
                'ObjectContextHead: in training, the BatchNorm of the key and value projections '
                'normalizes over all region features of the batch, and there is only one (batch size 1, '
                'and a first stage with one output channel, e.g. out_channels=1); train with batch size '
                ">= 2 or use a norm_cfg without batch statistics, e.g. dict(type='GN', ...).")

    def loss(self, inputs, prev_output, batch_data_samples=None, train_cfg=None) -> dict:
        """``BaseCascadeDecodeHead.loss``. The defaults let a plain ``EncoderDecoder``, which passes
        no ``prev_output``, reach the clear error of :meth:`forward`."""
        return super().loss(inputs, prev_output, batch_data_samples, train_cfg)

    def predict(self, inputs, prev_output, batch_img_metas=None, test_cfg=None):
        """``BaseCascadeDecodeHead.predict``, with the defaults of :meth:`loss`."""
        return super().predict(inputs, prev_output, batch_img_metas, test_cfg)

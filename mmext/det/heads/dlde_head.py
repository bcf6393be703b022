"""DLDE head: RetinaNet whose classifier compares unit anchor embeddings with tracked class means."""
import inspect
import warnings
from typing import List, Optional, Sequence

import torch
import torch.nn as nn
from mmdet.models.dense_heads import RetinaHead
from mmdet.models.utils import images_to_levels, multi_apply
from mmdet.registry import MODELS
from mmdet.structures.bbox import cat_boxes
from mmengine import dist

from mmext.ops.checks import check_no_init_override
from mmext.ops.directional import (anchor_embedding_norms, class_embedding_sums, cosine_map_to_means,
                                   ema_update_means, gather_unit_embeddings, means_from_sums,
                                   modified_sigmoid_logit)

MEANS_UPDATES = ('batch', 'manual')

# RetinaHead's defaults, for the arguments DLDEHead takes in RetinaHead's order.
_RETINA_HEAD_DEFAULTS = inspect.signature(RetinaHead.__init__).parameters


@MODELS.register_module()
class DLDEHead(RetinaHead):
    """Deep Local Directional Embedding head (torchsight's ``DirectionalClassification`` on mmdet).

    RetinaHead's classification conv is replaced by one that gives every anchor an
    ``embedding_size``-dim embedding; its score for class c is the modified sigmoid of the cosine
    similarity to the class's tracked mean direction ``means[c]``
    (:mod:`mmext.ops.directional`), with learnable per-class ``class_weight`` w and
    ``class_bias`` b. Anchors, assignment, box coding, the regression branch, losses and NMS are
    RetinaHead's.

    The head emits ``logit(p)`` (p clamped to [1e-5, 1 - 1e-5], torchsight's clamp), so mmdet's
    sigmoid ``FocalLoss`` computes the focal loss of p itself and ``predict`` returns scores equal
    to p; a separate probability-space loss would duplicate mmdet's, and the clamp keeps the logit
    finite if a learned w < 0 pushed p above 1. The focal loss is normalized by the number of
    positive anchors as in mmdet and the paper (torchsight divides by all non-ignored anchors and
    multiplies the loss by 1e3 to compensate).

    Means are buffers (saved in checkpoints, no gradient), zero at the start, so every probability
    is sigmoid(-3.5) / sigmoid(3.5) = 0.0302 until the first update. In training, the embeddings of
    the positive anchors of mmdet's assignment update them before the batch is classified:

    * ``means_update='batch'``: per class, ``m <- normalize((1 - means_lr) m + means_lr S / |S|)``
      with S the sum of the class's positive embeddings in the batch (all ranks' under DDP); a class
      without positives keeps its mean. torchsight steps once per image; one step per batch is the
      same at batch size 1 and keeps DDP ranks identical.
    * ``means_update='manual'``: S accumulates in the ``embedding_sums`` buffer and
      :class:`~mmext.det.hooks.DLDEMeansHook` sets ``means = S / |S|`` at its interval (classes
      without embeddings keep theirs, never NaN) and then clears the sums, so a mean reflects the
      last interval (torchsight never clears them).

    Ground truth of zero width or height is dropped before assignment (see :meth:`_usable_gt`);
    ``DetClassCheckHook`` refuses boxes with NaN/Inf or x2 < x1, and labels outside [0, num_classes),
    once per training batch.

    ``forward`` returns the per-level embedding maps in the place of RetinaHead's class scores;
    :meth:`embeddings_to_logits` turns them into scores with the current means.

    Args:
        num_classes (int): number of object classes.
        in_channels (int): channels of the FPN levels.
        stacked_convs, conv_cfg, norm_cfg, anchor_generator: as ``RetinaHead``'s, in its order and
            with its defaults.
        init_cfg (dict): RetinaHead's without its ``retina_cls`` override (refused: DLDE has no logit
            prior): N(0, 0.01) for every conv, biases 0. Positional, fifth, as in ``RetinaHead``.
        embedding_size (int): dimension E of the anchor embeddings, >= 2. Default: 256.
        means_update (str): 'batch' or 'manual'. Default: 'batch'.
        means_lr (float): EMA rate of the 'batch' mode, in (0, 1]. Default: 0.1.
        init_weight (float): initial w of every class. Default: 7.0.
        init_bias (float): initial b of every class. Default: -0.5.
        **kwargs: ``AnchorHead`` arguments (feat_channels, bbox_coder, loss_cls, loss_bbox,
            train_cfg, test_cfg, ...). ``loss_cls`` must be a sigmoid loss (``use_sigmoid=True``).
    """

    def __init__(self, num_classes: int, in_channels: int, stacked_convs: int = 4,
                 conv_cfg: Optional[dict] = None, norm_cfg: Optional[dict] = None,
                 anchor_generator: dict = _RETINA_HEAD_DEFAULTS['anchor_generator'].default,
                 init_cfg: dict = dict(type='Normal', layer='Conv2d', std=0.01), *,
                 embedding_size: int = 256, means_update: str = 'batch', means_lr: float = 0.1,
                 init_weight: float = 7.0, init_bias: float = -0.5, **kwargs):
        # RetinaHead's retina_cls override sets a logit prior (bias_prob); DLDE's classifier retina_emb
        # outputs embedding directions, which a shared bias of -log(99) would point all one way. DLDE's
        # prior is the modified sigmoid's: p = 0.0302 for every class at the start.
        check_no_init_override(
            init_cfg, 'retina_cls', 'DLDEHead',
            "RetinaHead's classifier, which DLDEHead replaces by the embedding conv 'retina_emb'; bias_prob "
            '(a logit prior) does not apply to embeddings. Leave init_cfg out (the default is '
            "dict(type='Normal', layer='Conv2d', std=0.01)) or name the embedding conv: "
            "override=dict(type='Normal', name='retina_emb', std=0.01).")
        if means_update not in MEANS_UPDATES:
            raise ValueError(f"DLDEHead: means_update={means_update!r}, expected one of {MEANS_UPDATES}")
        if not 0 < means_lr <= 1:
            raise ValueError(f'DLDEHead: means_lr={means_lr} must lie in (0, 1]')
        if embedding_size < 2:
            raise ValueError(f'DLDEHead: embedding_size={embedding_size} must be >= 2 (a direction)')
        self.embedding_size = embedding_size
        self.means_update = means_update
        self.means_lr = means_lr
        super().__init__(num_classes, in_channels, stacked_convs, conv_cfg, norm_cfg, anchor_generator,
                         init_cfg, **kwargs)
        if not self.use_sigmoid_cls:
            raise ValueError('DLDEHead scores every class independently: loss_cls needs use_sigmoid=True')
        self.class_weight = nn.Parameter(torch.full((num_classes,), float(init_weight)))
        self.class_bias = nn.Parameter(torch.full((num_classes,), float(init_bias)))
        self.register_buffer('means', torch.zeros(num_classes, embedding_size))
        self.register_buffer('embedding_sums', torch.zeros(num_classes, embedding_size))
        self.means_hook_attached = False  # set by DLDEMeansHook; 'manual' warns once without it
        self._warned_no_hook = False

    def _init_layers(self) -> None:
        super()._init_layers()
        del self.retina_cls
        self.retina_emb = nn.Conv2d(self.feat_channels if self.stacked_convs else self.in_channels,
                                    self.num_base_priors * self.embedding_size, 3, padding=1)

    def forward_single(self, x: torch.Tensor):
        """(B, in_channels, H, W) -> (B, A*E, H, W) anchor embeddings and (B, A*4, H, W) deltas."""
        if x.shape[1] != self.in_channels:
            raise ValueError(f'DLDEHead: bbox_head.in_channels={self.in_channels}, but the neck gives '
                             f'{x.shape[1]}-channel features; set in_channels={x.shape[1]} (the neck\'s '
                             'out_channels).')
        cls_feat, reg_feat = x, x
        for cls_conv in self.cls_convs:
            cls_feat = cls_conv(cls_feat)
        for reg_conv in self.reg_convs:
            reg_feat = reg_conv(reg_feat)
        return self.retina_emb(cls_feat), self.retina_reg(reg_feat)

    def embedding_norms(self, embedding_map: torch.Tensor) -> torch.Tensor:
        """(B, A*E, H, W) embeddings -> (B, A, 1, H, W) their norms, computed once per level and
        shared by the mean tracking and the scores (constants: the scores' backward differentiates
        through them, :func:`~mmext.ops.directional.cosine_map_to_means`)."""
        with torch.no_grad():
            return anchor_embedding_norms(embedding_map, self.embedding_size)

    def anchor_unit_embeddings(self, embedding_map: torch.Tensor, anchor_index: torch.Tensor,
                               norms: Optional[torch.Tensor] = None) -> torch.Tensor:
        """(B, A*E, H, W) embeddings, (N,) indices in mmdet's flat anchor order -> (N, E) unit
        embeddings of those anchors (the whole (B*H*W*A, E) is never built)."""
        norms = self.embedding_norms(embedding_map) if norms is None else norms
        return gather_unit_embeddings(embedding_map, norms, anchor_index)

    def anchor_logits(self, embedding_map: torch.Tensor,
                      norms: Optional[torch.Tensor] = None) -> torch.Tensor:
        """(B, A*E, H, W) embeddings -> (B, H*W*A, C) logit(p) class scores, in mmdet's anchor order.

        The cosines come from the map in its own layout (:func:`cosine_map_to_means`); only the
        C-channel result is permuted. mmext.deploy's exported graph reads these."""
        norms = self.embedding_norms(embedding_map) if norms is None else norms
        cos_sim = cosine_map_to_means(embedding_map, norms, self.means)
        cos_sim = cos_sim.permute(0, 2, 3, 1).reshape(cos_sim.shape[0], -1, self.cls_out_channels)
        return modified_sigmoid_logit(cos_sim, self.class_weight, self.class_bias)

    def embeddings_to_logits(self, embedding_map: torch.Tensor,
                             norms: Optional[torch.Tensor] = None) -> torch.Tensor:
        """(B, A*E, H, W) embeddings -> (B, A*C, H, W) logit(p) class scores, RetinaHead's layout."""
        batch_size, _, height, width = embedding_map.shape
        logits = self.anchor_logits(embedding_map, norms)
        return logits.reshape(batch_size, height, width, -1).permute(0, 3, 1, 2)

    # -- training -----------------------------------------------------------------------------------

    def loss(self, x, batch_data_samples) -> dict:
        """RetinaHead's loss, after checking that the samples carry ground truth to assign."""
        if any('gt_instances' not in sample for sample in batch_data_samples):
            raise ValueError(
                'DLDEHead: training needs gt_instances in every data sample (they drive both the '
                "assigner and the class means); load them with dict(type='LoadAnnotations', "
                'with_bbox=True) in train_pipeline.')
        return super().loss(x, batch_data_samples)

    def loss_by_feat(self, embedding_maps: List[torch.Tensor], bbox_preds: List[torch.Tensor],
                     batch_gt_instances, batch_img_metas, batch_gt_instances_ignore=None) -> dict:
        """RetinaHead's losses of the embedding maps of :meth:`forward`.

        mmdet's anchor assignment first; then, in training, the mean update from the positive
        anchors (:meth:`track_means`); then the per-level focal and box losses, on the scores of the
        updated means.

        Args:
            embedding_maps: per level (B, A*E, H, W) anchor embeddings.
            bbox_preds, batch_gt_instances, batch_img_metas, batch_gt_instances_ignore: as
                ``AnchorHead.loss_by_feat``.

        Returns:
            dict: per-level lists ``loss_cls`` and ``loss_bbox``.
        """
        if self.means_update == 'manual' and not self.means_hook_attached and not self._warned_no_hook:
            warnings.warn("DLDEHead: means_update='manual' but no DLDEMeansHook is configured, so the "
                          "class means stay zero; add custom_hooks=[dict(type='DLDEMeansHook')].")
            self._warned_no_hook = True
        batch_gt_instances = [self._usable_gt(gt) for gt in batch_gt_instances]
        anchor_list, valid_flag_list = self.get_anchors(
            [e.shape[-2:] for e in embedding_maps], batch_img_metas, device=embedding_maps[0].device)
        labels, label_weights, bbox_targets, bbox_weights, avg_factor = self.get_targets(
            anchor_list, valid_flag_list, batch_gt_instances, batch_img_metas,
            batch_gt_instances_ignore=batch_gt_instances_ignore)
        norms = [self.embedding_norms(e) for e in embedding_maps]  # once per level, for both uses
        if self.training:
            self.track_means(embedding_maps, labels, norms)
        level_anchors = images_to_levels([cat_boxes(anchors) for anchors in anchor_list],
                                         [anchors.size(0) for anchors in anchor_list[0]])
        logits = [self.embeddings_to_logits(e, n) for e, n in zip(embedding_maps, norms)]
        losses_cls, losses_bbox = multi_apply(
            self.loss_by_feat_single, logits, bbox_preds,
            level_anchors, labels, label_weights, bbox_targets, bbox_weights, avg_factor=avg_factor)
        return dict(loss_cls=losses_cls, loss_bbox=losses_bbox)

    def _usable_gt(self, gt_instances):
        """The ground truth without the boxes of zero width or height (malformed boxes and labels out of
        range are refused once per batch by ``DetClassCheckHook``).

        mmdet's MaxIoUAssigner (``min_pos_iou=0``) would make every anchor a positive of a zero-area
        box (all of them have IoU 0 with it): an infinite box target (log 0) and a class mean pulled
        towards all anchors. Such boxes arise from crops; they carry no object, as in mmdet's
        ``FilterAnnotations``.
        """
        boxes = getattr(gt_instances.bboxes, 'tensor', gt_instances.bboxes)
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        return gt_instances if bool(keep.all()) else gt_instances[keep]

    @torch.no_grad()
    def track_means(self, embedding_maps: Sequence[torch.Tensor], labels: Sequence[torch.Tensor],
                    norms: Optional[Sequence[torch.Tensor]] = None) -> None:
        """Update the means (or accumulate the sums) from one batch.

        Args:
            embedding_maps: per level (B, A*E, H, W) embeddings.
            labels: per level (B, H*W*A) assigned labels (``num_classes`` for background).
            norms: per level (B, A, 1, H, W) norms of the embeddings (computed if not given).
        """
        norms = norms or [None] * len(embedding_maps)
        sums = 0
        for embedding_map, level_labels, level_norms in zip(embedding_maps, labels, norms):
            level_labels = level_labels.flatten()
            positive = ((level_labels >= 0) & (level_labels < self.num_classes)).nonzero().squeeze(1)
            sums = sums + class_embedding_sums(
                self.anchor_unit_embeddings(embedding_map, positive, level_norms),
                level_labels[positive], self.num_classes)
        dist.all_reduce(sums, op='sum')  # all ranks' positives: every rank keeps identical state
        if self.means_update == 'manual':
            self.embedding_sums += sums
        else:
            self.means.copy_(ema_update_means(self.means, sums, self.means_lr))

    @torch.no_grad()
    def update_means_from_sums(self) -> None:
        """'manual' mode: ``means = sums / |sums|`` (unseen classes keep theirs), then clear the
        sums. The sums already hold all ranks' embeddings. Called by
        :class:`~mmext.det.hooks.DLDEMeansHook`."""
        self.means.copy_(means_from_sums(self.means, self.embedding_sums))
        self.embedding_sums.zero_()

    # -- inference ----------------------------------------------------------------------------------

    def predict_by_feat(self, embedding_maps: List[torch.Tensor], bbox_preds: List[torch.Tensor],
                        *args, **kwargs):
        """RetinaHead's post-processing on ``logit(p)``; its sigmoid makes the scores p."""
        return super().predict_by_feat([self.embeddings_to_logits(e) for e in embedding_maps],
                                       bbox_preds, *args, **kwargs)

"""What goes into the exported graph: the data preprocessor's normalisation and the model's inference,
as tensor-only modules that torch's dynamo exporter can trace with a dynamic batch and size.

Shape shorthand: ``B`` batch, ``K`` classes, ``H x W`` input size, ``M`` boxes kept per image.
The graph input is always ``images``: (B, 3, H, W) float32 in 0..255, in the channel order the
config's loader gives (mmcv loads BGR); ``bgr_to_rgb`` happens inside the graph.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .detection import detect, pad_to_multiple


def normalize_images(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
                     reverse_channels: bool) -> torch.Tensor:
    """The data preprocessor's normalisation, ``(x[:, ::-1] - mean) / std``.

    Args:
        images: (B, 3, H, W) float pixels in 0..255.
        mean, std: (1, 3, 1, 1), in the model's channel order (after any reversal).
        reverse_channels: BGR -> RGB (or back) first, as ``bgr_to_rgb`` does.

    Returns:
        (B, 3, H, W) normalised images.
    """
    if reverse_channels:
        images = images.flip(1)
    return (images - mean) / std


class SymbolicUpsample(nn.Module):
    """mmseg's ``Upsample`` by an integer factor, (B, C, h, w) -> (B, C, f * h, f * w), with the same
    output but a size the exporter keeps symbolic (no ``int()`` of it)."""

    def __init__(self, factor: int, mode: str, align_corners):
        super().__init__()
        self.factor, self.mode, self.align_corners = factor, mode, align_corners

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        return F.interpolate(x, size=(height * self.factor, width * self.factor), mode=self.mode,
                             align_corners=self.align_corners)


class PreprocessedGraph(nn.Module):
    """Holds the data preprocessor's mean, std and channel reversal as graph constants."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        preprocessor = model.data_preprocessor
        # mmseg's SegDataPreProcessor and mmengine's ImgDataPreprocessor (mmdet) name the flag differently.
        self.reverse_channels = bool(getattr(preprocessor, 'channel_conversion', False)
                                     or getattr(preprocessor, '_channel_conversion', False))
        if getattr(preprocessor, '_enable_normalize', False):
            mean, std = preprocessor.mean.view(1, -1, 1, 1), preprocessor.std.view(1, -1, 1, 1)
        else:
            mean, std = torch.zeros(1, 3, 1, 1), torch.ones(1, 3, 1, 1)
        self.register_buffer('mean', mean.detach().clone().float(), persistent=False)
        self.register_buffer('std', std.detach().clone().float(), persistent=False)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        return normalize_images(images, self.mean, self.std, self.reverse_channels)


class SegmentorGraph(PreprocessedGraph):
    """(B, 3, H, W) images -> (B, K, H, W) ``logits``, what ``predict`` puts in ``seg_logits`` for
    images that need no resizing back (``ori_shape == img_shape``)."""

    output_names = ('logits',)

    def output_spec(self) -> dict:
        return dict(logits='(B, K, H, W) float32 class logits at the input size (seg_logits of predict)')

    def postprocess_spec(self) -> dict:
        """How predict turns logits into labels: sigmoid > threshold for one channel, else argmax."""
        head = self.model.decode_head
        head = head[-1] if isinstance(head, nn.ModuleList) else head
        return dict(threshold=getattr(head, 'threshold', None),
                    align_corners=bool(getattr(self.model, 'align_corners', False)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        height, width = images.shape[2:]
        # One meta for the whole batch: the heads read batch_img_metas[0] only, and a list of B metas
        # would specialise the exported batch size.
        meta = dict(img_shape=(height, width), ori_shape=(height, width), pad_shape=(height, width))
        return self.model.inference(self.normalize(images), [meta])


class DetectorGraph(PreprocessedGraph):
    """(B, 3, H, W) images -> ``boxes`` (B, M, 4), ``scores`` (B, M), ``labels`` (B, M): what a
    one-stage mmdet detector's ``predict`` gives for images that need no rescaling back
    (``scale_factor`` 1), M = ``test_cfg.max_per_img``, padded with label -1, score 0, box 0.

    Normalised images are padded to the data preprocessor's ``pad_size_divisor`` as mmdet pads them;
    boxes are clipped to the unpadded H x W. Post-processing is :func:`~mmext.deploy.detection.detect`.

    ``min_size``: the smallest H, W of a dynamic export, at which the coarsest level (stride s) is
    2 x 2: the exporter specialises a size-1 map, so one graph cannot serve both.
    """

    output_names = ('boxes', 'scores', 'labels')

    def __init__(self, model: nn.Module):
        super().__init__(model)
        self.head = check_one_stage_anchor_head(model)
        self.size_divisor = int(getattr(model.data_preprocessor, 'pad_size_divisor', 1))
        self.test_cfg = check_test_cfg(self.head)
        self.min_size = max(max(stride) for stride in self.head.prior_generator.strides) + 1

    def output_spec(self) -> dict:
        return dict(boxes='(B, M, 4) float32 x1y1x2y2 in input pixels; 0 for padding',
                    scores='(B, M) float32, descending; 0 for padding',
                    labels='(B, M) int64 class index; -1 for padding')

    def postprocess_spec(self) -> dict:
        return dict(max_per_img=self.test_cfg['max_per_img'],
                    test_cfg={key: self.test_cfg.get(key) for key in
                              ('nms_pre', 'score_thr', 'min_bbox_size', 'nms', 'max_per_img')},
                    rescale='none in the graph: boxes are in input pixels; DeployedModel.predict '
                            'divides them by a sample\'s scale_factor, as predict(rescale=True) does')

    def forward(self, images: torch.Tensor):
        height, width = images.shape[2:]
        features = self.model.extract_feat(pad_to_multiple(self.normalize(images), self.size_divisor))
        class_maps, delta_maps = self.head(features)
        priors = self.head.prior_generator.grid_priors([m.shape[-2:] for m in class_maps],
                                                       dtype=images.dtype, device=images.device)
        # DLDEHead's forward gives anchor embeddings; its anchor_logits scores them.
        anchor_logits = getattr(self.head, 'anchor_logits', self.anchor_logits)
        level_scores = [anchor_logits(m).sigmoid() for m in class_maps]
        level_deltas = [m.permute(0, 2, 3, 1).reshape(m.shape[0], -1, 4) for m in delta_maps]
        return detect(level_scores, level_deltas, priors, self.head.bbox_coder.decode, (height, width),
                      self.test_cfg)


    def anchor_logits(self, class_map: torch.Tensor) -> torch.Tensor:
        """(B, A*C, H, W) -> (B, H*W*A, C), the order of mmdet's ``_predict_by_feat_single``."""
        return class_map.permute(0, 2, 3, 1).reshape(class_map.shape[0], -1, self.head.cls_out_channels)


SUPPORTED_DETECTORS = ('one-stage detectors with an anchor head that predicts class scores and box deltas '
                       '(RetinaHead and its subclasses: RetinaNet, DLDE)')


def check_one_stage_anchor_head(model: nn.Module) -> nn.Module:
    """The detector's ``bbox_head``, after refusing, by name, the detectors the graph does not reproduce:
    two-stage ones (Faster R-CNN: RPN and RoI heads), anchor-free heads (FCOS) and anchor heads with
    outputs beyond scores and deltas (ATSS's centerness)."""
    from mmdet.models.dense_heads import AnchorHead

    from .spec import DeployError
    name = type(model).__name__
    head = getattr(model, 'bbox_head', None)
    if head is None:
        parts = [part for part in ('rpn_head', 'roi_head') if hasattr(model, part)]
        raise DeployError(f'{name} ({" and ".join(parts) or "no bbox_head"}): mmext.deploy exports '
                          f'{SUPPORTED_DETECTORS}')
    extra = [loss for loss in ('loss_centerness', 'loss_iou', 'loss_dfl') if hasattr(head, loss)]
    if not isinstance(head, AnchorHead) or extra:
        why = f'its {", ".join(extra)}' if extra else 'not an AnchorHead'
        raise DeployError(f'{name} with {type(head).__name__} ({why}): mmext.deploy exports '
                          f'{SUPPORTED_DETECTORS}')
    return head


def check_test_cfg(head: nn.Module) -> dict:
    """The head's ``test_cfg``, after refusing what :func:`detect` does not reproduce."""
    from .spec import DeployError
    name = type(head).__name__
    cfg = head.test_cfg
    if not getattr(head, 'use_sigmoid_cls', False) or not hasattr(head, 'prior_generator') or \
            getattr(head, 'bbox_coder', None) is None or getattr(head.bbox_coder, 'encode_size', 4) != 4:
        raise DeployError(f'{name}: mmext.deploy exports anchor heads with sigmoid scores and 4-value '
                          'box deltas (RetinaHead and its subclasses)')
    nms = cfg.get('nms') or {}
    if nms.get('type', 'nms') != 'nms' or nms.get('class_agnostic', False) or 'max_per_img' not in cfg:
        raise DeployError(f'{name}: test_cfg needs class-aware nms=dict(type="nms", iou_threshold=...) '
                          f'and max_per_img, got {dict(cfg)}')
    return cfg

"""What goes into the exported graph: the data preprocessor's normalisation and the model's inference,
as tensor-only modules that torch's dynamo exporter can trace with a dynamic batch and size.

Shape shorthand: ``B`` batch, ``K`` classes, ``H x W`` input size, ``M`` boxes kept per image.
The graph input is always ``images``: (B, 3, H, W) float32 in 0..255, in the channel order the
config's loader gives (mmcv loads BGR); ``bgr_to_rgb`` happens inside the graph.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


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
        return dict(threshold=getattr(head, 'threshold', None))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        height, width = images.shape[2:]
        # One meta for the whole batch: the heads read batch_img_metas[0] only, and a list of B metas
        # would specialise the exported batch size.
        meta = dict(img_shape=(height, width), ori_shape=(height, width), pad_shape=(height, width))
        return self.model.inference(self.normalize(images), [meta])

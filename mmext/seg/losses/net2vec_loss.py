"""The Net2Vec loss as an mmseg loss (``loss_decode``) on logits and label maps or concept masks."""
from typing import Optional, Tuple, Union

import torch
import torch.nn as nn
from mmseg.registry import MODELS

from mmext.ops.net2vec import concept_masks, net2vec_loss


@MODELS.register_module()
class Net2VecLoss(nn.Module):
    """Net2Vec loss (:func:`mmext.ops.net2vec_loss`) of each output channel as a binary concept.

    mmseg's calling convention, ``(logits (N, C, H, W), target, weight=None, ignore_index=255)``; the
    outputs are ``sigmoid(logits)``. The target is either

    * an integer label map (N, H, W), as every mmseg decode head passes it: channel c's concept is
      ``labels == c``, or ``labels == 1`` for a binary head (C = 1, mmseg's ``out_channels=1``), and
      pixels labelled ``ignore_index`` leave both terms; or
    * floating per-channel concept masks (N, C, H, W), or (N, H, W) when C = 1 (soft masks or
      encodings such as :class:`~mmext.seg.heads.Net2VecHead`'s IoU targets), positive where
      ``> target_thresh``; ``weight`` of the target's shape (0 leaves an element out) replaces
      ``ignore_index`` there.

    Args:
        factor_pos_class (float | 'auto'): b, the weight of the true-positive term. 'auto' (the
            default) is the Net2Vec paper's weighting, ``1 - foreground fraction`` of each channel,
            so a rare concept's positives are not drowned by its background. The paper takes the
            fraction over the dataset; here it is counted over every labelled pixel seen in training
            so far (in eval mode: over the batch), since a batch without the concept would give
            b = 1 and leave its false positives free. A float in [0, 1] fixes b
            (hybrid_learning's default is 0.5).
        normalize_area (bool): divide each image's loss by its number of labelled pixels (the
            default), so that the scale does not grow with the image size and ``loss_weight`` 1 is
            comparable to cross-entropy; False gives the reference's plain sums.
        target_thresh (float): floating targets strictly above it are positive. Default 0.5 (an IoU
            target above 0.5 is a hit); label maps ignore it.
        loss_weight (float): multiplier of the loss. Default: 1.0.
        loss_name (str): key in the loss dict; must start with 'loss_'. Default: 'loss_net2vec'.
    """

    def __init__(self, factor_pos_class: Union[float, str] = 'auto', normalize_area: bool = True,
                 target_thresh: float = 0.5, loss_weight: float = 1.0, loss_name: str = 'loss_net2vec'):
        super().__init__()
        if factor_pos_class != 'auto' and not (isinstance(factor_pos_class, (int, float))
                                               and 0 <= factor_pos_class <= 1):
            raise ValueError("factor_pos_class must be 'auto' or a number in [0, 1], "
                             f'got {factor_pos_class!r}')
        if not loss_name.startswith('loss_'):
            raise ValueError(f"loss_name must start with 'loss_' (mmseg sums only those), got {loss_name!r}")
        self.factor_pos_class = factor_pos_class
        self.normalize_area = normalize_area
        self.target_thresh = target_thresh
        self.loss_weight = loss_weight
        self._loss_name = loss_name
        # Per-channel counts behind factor_pos_class='auto', sized at the first call; not saved in
        # checkpoints (a resumed run counts again from its first batch).
        self.register_buffer('seen_positives', torch.zeros(0, dtype=torch.float64), persistent=False)
        self.register_buffer('seen_labelled', torch.zeros(0, dtype=torch.float64), persistent=False)

    def _targets_and_weights(self, pred: torch.Tensor, target: torch.Tensor, weight: Optional[torch.Tensor],
                             ignore_index: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """(N, C, H, W) binary targets and pixel weights (0 = not labelled), in ``pred``'s dtype."""
        if pred.dim() != 4:
            raise ValueError(f'Net2VecLoss expects logits of shape (N, C, H, W), got {tuple(pred.shape)}')
        if target.is_floating_point():
            if target.dim() == 3 and pred.shape[1] == 1:
                target = target.unsqueeze(1)
                weight = weight.unsqueeze(1) if weight is not None else None
            if target.shape != pred.shape:
                raise ValueError(f'Net2VecLoss: concept masks of shape {tuple(target.shape)} do not match '
                                 f'the logits {tuple(pred.shape)}')
            pixel_weight = torch.ones_like(pred) if weight is None else weight.to(pred.dtype).expand_as(pred)
            return (target > self.target_thresh).to(pred.dtype), pixel_weight
        check_label_map_shape(pred, target)
        masks, labelled = concept_masks(target, pred.shape[1], ignore_index)
        pixel_weight = labelled.to(pred.dtype)
        if weight is not None:
            pixel_weight = pixel_weight * weight.unsqueeze(1)
        return masks.to(pred.dtype), pixel_weight.expand_as(pred)

    def forward(self, pred: torch.Tensor, target: torch.Tensor, weight: Optional[torch.Tensor] = None,
                ignore_index: int = 255, **kwargs) -> torch.Tensor:
        """(N, C, H, W) logits and a label map or concept masks -> scalar loss (mean over images and
        channels). ``weight``, if given, weights the pixels like mmseg's losses do."""
        targets, pixel_weight = self._targets_and_weights(pred, target, weight, ignore_index)
        labelled = (pixel_weight > 0).to(pred.dtype)
        b = self.factor_pos_class
        if b == 'auto':
            b = self.auto_factor_pos_class(targets, labelled).to(pred.dtype).view(1, -1, 1, 1)
        per_image = net2vec_loss(pred.sigmoid(), targets, b, reduction='none', weight=pixel_weight)  # (N, C)
        if self.normalize_area:
            per_image = per_image / labelled.sum(dim=(2, 3)).clamp(min=1)
        return self.loss_weight * per_image.mean()

    def auto_factor_pos_class(self, targets: torch.Tensor, labelled: torch.Tensor) -> torch.Tensor:
        """(C,) b = 1 - foreground fraction, from the counts of training so far (with this batch)."""
        positives = (targets * labelled).sum(dim=(0, 2, 3)).detach().double()
        total = labelled.sum(dim=(0, 2, 3)).detach().double()
        if self.training:
            if self.seen_positives.shape != positives.shape:
                self.seen_positives = torch.zeros_like(positives)
                self.seen_labelled = torch.zeros_like(total)
            self.seen_positives += positives
            self.seen_labelled += total
            positives, total = self.seen_positives, self.seen_labelled
        return 1 - positives / total.clamp(min=1)

    @property
    def loss_name(self) -> str:
        return self._loss_name


def check_label_map_shape(pred: torch.Tensor, labels: torch.Tensor) -> None:
    """Raise unless ``labels`` is an (N, H, W) map for the (N, C, H, W) logits. Its ids are not checked
    here (a host synchronisation per call): ``SegClassCheckHook`` refuses ids outside 0..num_classes-1
    other than ``ignore_index`` once per training batch; unchecked, such ids count as background for
    every channel."""
    n, _, h, w = pred.shape
    if tuple(labels.shape) != (n, h, w):
        raise ValueError(f'Net2VecLoss: a label map must have shape (N, H, W) = {(n, h, w)} for logits of '
                         f'shape (N, C, H, W) = {tuple(pred.shape)}, got {tuple(labels.shape)}')

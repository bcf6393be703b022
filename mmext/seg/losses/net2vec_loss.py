"""The Net2Vec loss as an mmseg loss (``loss_decode``) on logits and label maps."""
from typing import Optional, Union

import torch
import torch.nn as nn
from mmseg.registry import MODELS

from mmext.ops.net2vec import net2vec_loss


@MODELS.register_module()
class Net2VecLoss(nn.Module):
    """Net2Vec loss (:func:`mmext.ops.net2vec_loss`) of every class as a binary concept.

    mmseg's calling convention: ``(logits (N, C, H, W), labels (N, H, W))``. The outputs are
    ``sigmoid(logits)``, class c's target is ``labels == c``, and pixels labelled ``ignore_index``
    leave both terms.

    Args:
        factor_pos_class (float | 'auto'): b, the weight of the true-positive term. 'auto' (the
            default) is the Net2Vec paper's weighting, ``1 - foreground fraction`` of each class
            among the labelled pixels of the batch, so a rare concept's positives are not drowned by
            its background; a float in [0, 1] fixes it (hybrid_learning's default is 0.5).
        normalize_area (bool): divide each image's loss by its number of labelled pixels (the
            default), so that the scale does not grow with the image size and ``loss_weight`` 1 is
            comparable to cross-entropy; False gives the reference's plain sums.
        loss_weight (float): multiplier of the loss. Default: 1.0.
        loss_name (str): key in the loss dict; must start with 'loss_'. Default: 'loss_net2vec'.
    """

    def __init__(self, factor_pos_class: Union[float, str] = 'auto', normalize_area: bool = True,
                 loss_weight: float = 1.0, loss_name: str = 'loss_net2vec'):
        super().__init__()
        if factor_pos_class != 'auto' and not (isinstance(factor_pos_class, (int, float))
                                               and 0 <= factor_pos_class <= 1):
            raise ValueError("factor_pos_class must be 'auto' or a number in [0, 1], "
                             f'got {factor_pos_class!r}')
        if not loss_name.startswith('loss_'):
            raise ValueError(f"loss_name must start with 'loss_' (mmseg sums only those), got {loss_name!r}")
        self.factor_pos_class = factor_pos_class
        self.normalize_area = normalize_area
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def forward(self, pred: torch.Tensor, target: torch.Tensor, weight: Optional[torch.Tensor] = None,
                ignore_index: int = 255, **kwargs) -> torch.Tensor:
        """(N, C, H, W) logits and (N, H, W) labels -> scalar loss (mean over images and classes).

        ``weight`` (N, H, W), if given, weights the pixels like mmseg's losses do.
        """
        num_classes = pred.shape[1]
        labelled = (target != ignore_index).unsqueeze(1)  # (N, 1, H, W)
        classes = torch.arange(num_classes, device=target.device).view(1, -1, 1, 1)
        targets = (target.unsqueeze(1) == classes) & labelled  # (N, C, H, W)
        pixel_weight = labelled.to(pred.dtype)
        if weight is not None:
            pixel_weight = pixel_weight * weight.unsqueeze(1)
        b = self.factor_pos_class
        if b == 'auto':
            positives = targets.sum(dim=(0, 2, 3)).to(pred.dtype)
            b = (1 - positives / labelled.sum().clamp(min=1)).view(1, -1, 1, 1)
        per_image = net2vec_loss(pred.sigmoid(), targets.to(pred.dtype), b, reduction='none',
                                 weight=pixel_weight)  # (N, C)
        if self.normalize_area:
            per_image = per_image / labelled.sum(dim=(2, 3)).clamp(min=1)
        return self.loss_weight * per_image.mean()

    @property
    def loss_name(self) -> str:
        return self._loss_name

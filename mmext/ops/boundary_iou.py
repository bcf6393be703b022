"""Boundary IoU (Cheng et al., CVPR 2021) for semantic segmentation, as pure tensor functions.

Shape shorthand: ``K`` classes, ``H x W`` image size, ``...`` any leading (batch) dimensions.

Boundary IoU compares only the pixels near the contours: for a mask ``M`` its *inner boundary band*
``M_d`` holds the pixels of ``M`` within (Chebyshev) distance ``d`` of the contour, i.e.
``M & ~erode(M, d)``, and for a class with ground-truth mask ``G`` and predicted mask ``P``::

    BIoU = |G_d & P_d| / |G_d | P_d|

Unlike the mask IoU, whose value is dominated by the interior pixels of large regions, it is as
sensitive to a one-pixel shift of the contour of a large region as of a small one.

For semantic segmentation every class is one mask per image (:func:`boundary_intersect_and_union`),
and, as mmseg's ``IoUMetric`` does for the mask IoU, the dataset-level score of a class is the sum of its
intersections over the sum of its unions across images (:func:`class_boundary_iou`); mBIoU is the
mean over the classes whose union is not empty.

The image frame is not a contour. The erosion sees the image replicated beyond its border, so a mask
that touches the border has no band along it and a mask covering the whole image has an empty band.
The official boundary-iou-api (``mask_to_boundary``) zero-pads instead, which makes the image frame a
contour of every mask touching it. That suits object masks, but in semantic segmentation the classes
tile the image: the background (or sky, road, ...) class would get a band along the whole frame in
both the prediction and the ground truth, and those free matches inflate its score.
"""
import torch
import torch.nn.functional as F


def inner_boundary(masks: torch.Tensor, width: int) -> torch.Tensor:
    """Inner boundary band: the mask pixels within Chebyshev distance ``width`` of the mask's contour.

    The band is ``masks & ~erode(masks, width)``, where the erosion is ``width`` iterations of a
    3x3 erosion, i.e. one (2 width + 1) x (2 width + 1) square min-filter. It is computed as a
    max-filter of the inverted mask (``max_pool2d``, separated into a vertical and a horizontal
    pass). Outside the image the mask is taken to repeat its border pixels (replicate padding; the
    pooling's implicit padding, which clips the window to the image, gives exactly that for a
    max-filter), so the image border is not a contour.

    Args:
        masks: (..., H, W) bool masks.
        width: band width in pixels, ``>= 0``; 0 gives an empty band.

    Returns:
        (..., H, W) bool band, a subset of ``masks``. Empty for an empty mask and for a mask that
        covers the whole image.
    """
    if width < 0:
        raise ValueError(f'width must be >= 0, got {width}')
    masks = masks.bool()
    if width == 0 or masks.numel() == 0:
        return torch.zeros_like(masks)
    height, wide = masks.shape[-2:]
    outside = (~masks).reshape(-1, 1, height, wide).float()  # (N, 1, H, W), N = prod(...)
    kernel = 2 * width + 1
    # Windows of (2w + 1) with padding w; a window that leaves the image is clipped, which for a
    # max equals replicating the border pixels.
    near_outside = F.max_pool2d(outside, (kernel, 1), stride=1, padding=(width, 0))
    near_outside = F.max_pool2d(near_outside, (1, kernel), stride=1, padding=(0, width))
    return masks & (near_outside.reshape(masks.shape) > 0)


def boundary_intersect_and_union(pred: torch.Tensor, label: torch.Tensor, num_classes: int, width: int,
                                 ignore_index: int = 255) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-class boundary intersection and union of one semantic segmentation.

    For each class ``c``: ``G = label == c``, ``P = pred == c``, ``G_d = inner_boundary(G)``,
    ``P_d = inner_boundary(P)``; the intersection counts ``G_d & P_d`` and the union ``G_d | P_d``.
    Pixels within ``width`` of an ``ignore_index`` pixel (and those pixels themselves) are left out
    of both counts: whether a contour lies there is unknown, so neither a ground-truth band along an
    ignored region nor a predicted contour next to one is judged. (Counting them, as the official
    panoptic code does, makes a perfect prediction lose points along every ignored region.) Labels
    outside ``[0, num_classes)`` belong to no class but are counted; so are such predictions.

    Args:
        pred: (H, W) int predicted class of every pixel.
        label: (H, W) int ground-truth class of every pixel, ``ignore_index`` where unlabelled.
        num_classes: K.
        width: band width in pixels (see :func:`inner_boundary`).
        ignore_index: label value of the pixels left out.

    Returns:
        ``(area_intersect, area_union)``, each (K,) int64 pixel counts on the device of the inputs.
    """
    if pred.shape != label.shape or pred.dim() != 2:
        raise ValueError(f'pred and label must both be (H, W), got {tuple(pred.shape)} and '
                         f'{tuple(label.shape)}')
    classes = torch.arange(num_classes, device=label.device).view(-1, 1, 1)
    gt_band = inner_boundary(label.unsqueeze(0) == classes, width)  # (K, H, W)
    pred_band = inner_boundary(pred.unsqueeze(0) == classes.to(pred.device), width)
    labelled = label != ignore_index  # (H, W)
    valid = labelled & ~inner_boundary(labelled, width)  # not within width of an ignored pixel
    area_intersect = (gt_band & pred_band & valid).sum(dim=(1, 2))
    area_union = ((gt_band | pred_band) & valid).sum(dim=(1, 2))
    return area_intersect, area_union


def class_boundary_iou(total_intersect: torch.Tensor, total_union: torch.Tensor) -> torch.Tensor:
    """Dataset-level boundary IoU of every class from the counts summed over the images.

    Args:
        total_intersect: (K,) sum over the images of ``area_intersect`` of
            :func:`boundary_intersect_and_union`.
        total_union: (K,) sum over the images of ``area_union``.

    Returns:
        (K,) float64 ``total_intersect / total_union`` in [0, 1], NaN for the classes whose union is
        0 (in no band of the prediction nor of the ground truth in any image). mBIoU is the mean
        over the other classes, ``torch.nanmean`` of this.
    """
    total_intersect = total_intersect.double()
    total_union = total_union.double()
    nan = torch.full_like(total_union, float('nan'))
    return torch.where(total_union > 0, total_intersect / total_union.clamp(min=1), nan)

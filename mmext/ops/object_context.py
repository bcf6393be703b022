"""Object-contextual representations (OCR, Yuan et al., ECCV 2020) as pure tensor functions.

Shape shorthand: ``B`` batch, ``C`` pixel-feature channels, ``Ck`` key channels, ``K`` object regions
(one per class of the coarse prediction), ``H x W`` feature size, ``N = H * W`` pixels.

The three steps of the paper:

1. soft object regions: a *spatial* softmax of each region's logits over the N pixels
   (:func:`soft_object_regions`);
2. object-region representations: the region-weighted mean of the pixel features
   (:func:`spatial_gather`);
3. pixel-region relation: for each pixel a softmax over the K regions of ``q . k / sqrt(Ck)``, and the
   context is the relation-weighted sum of the region values (:func:`pixel_region_relation`,
   :func:`object_context`).
"""
import torch
import torch.nn.functional as F

from .precision import computed_in_fp32


@computed_in_fp32
def soft_object_regions(region_logits: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Spatial softmax of region logits: the soft object regions of OCR.

    Args:
        region_logits: (B, K, H, W) coarse logits, one channel per region (class).
        scale: softmax temperature; the weights are ``softmax(scale * logits)`` over the pixels.

    Returns:
        (B, K, N) weights; for every (b, k) they are positive and sum to 1 over the N pixels.
    """
    return F.softmax(scale * region_logits.flatten(2), dim=2)


@computed_in_fp32
def spatial_gather(feats: torch.Tensor, region_logits: torch.Tensor,
                   scale: float = 1.0) -> torch.Tensor:
    """Object-region representations: pixel features averaged with the soft object regions.

    Args:
        feats: (B, C, H, W) pixel features.
        region_logits: (B, K, H, W) coarse logits at the same size as ``feats``.
        scale: temperature of :func:`soft_object_regions`.

    Returns:
        (B, C, K, 1) region features ``f_k = sum_n A[k, n] x_n``, laid out as a K x 1 image so that
        1x1 convolutions project them. Constant logits give the spatial mean of ``feats`` for every k.
    """
    regions = soft_object_regions(region_logits, scale)  # (B, K, N)
    region_feats = torch.bmm(regions, feats.flatten(2).transpose(1, 2))  # (B, K, C)
    return region_feats.transpose(1, 2).unsqueeze(3)


@computed_in_fp32
def pixel_region_relation(query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
    """Pixel-region relation weights ``softmax_k(q_n . k_k / sqrt(Ck))``.

    Args:
        query: (B, Ck, H, W) projected pixel features.
        key: (B, Ck, K, 1) projected region features.

    Returns:
        (B, N, K) weights; for every pixel they sum to 1 over the K regions.
    """
    key_channels = query.shape[1]
    logits = torch.bmm(query.flatten(2).transpose(1, 2), key.flatten(2))  # (B, N, K)
    return F.softmax(logits * key_channels**-0.5, dim=2)


def object_context(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """Object-contextual representation of every pixel: relation-weighted region values.

    Args:
        query: (B, Ck, H, W) projected pixel features.
        key: (B, Ck, K, 1) projected region features.
        value: (B, Cv, K, 1) region values.

    Returns:
        (B, Cv, H, W) context ``y_n = sum_k W[n, k] v_k``. With K = 1 it is ``v_1`` at every pixel.
    """
    relation = pixel_region_relation(query, key)  # (B, N, K)
    context = torch.bmm(value.flatten(2), relation.transpose(1, 2))  # (B, Cv, N)
    return context.unflatten(2, query.shape[2:])

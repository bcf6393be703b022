"""Pure tensor functions behind the mmext methods (no registries, no OpenMMLab imports)."""
from .iou_encoding import intersect_decode, intersect_encode, iou_encode, proto_size
from .net2vec import concept_masks, net2vec_loss
from .object_context import (object_context, pixel_region_relation, soft_object_regions,
                             spatial_gather)
from .point_rend import (grid_indices_to_coords, point_labels, point_sample, point_uncertainty,
                         scatter_point_logits, training_point_counts,
                         uncertain_point_coords_with_randomness, uncertain_point_indices_on_grid)

__all__ = [
    'soft_object_regions', 'spatial_gather', 'pixel_region_relation', 'object_context',
    'point_sample', 'point_uncertainty', 'training_point_counts',
    'uncertain_point_coords_with_randomness', 'grid_indices_to_coords',
    'uncertain_point_indices_on_grid', 'scatter_point_logits', 'point_labels', 'net2vec_loss',
    'concept_masks', 'intersect_encode', 'iou_encode', 'intersect_decode', 'proto_size'
]

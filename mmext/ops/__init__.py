"""Pure tensor functions behind the mmext methods (no registries, no OpenMMLab imports)."""
from .boundary_iou import boundary_intersect_and_union, class_boundary_iou, inner_boundary
from .checks import (ClassCountError, check_boxes, check_class_count, check_coarse_logits,
                     check_feature_channels, check_label_range, check_no_init_override, check_required_keys)
from .directional import (anchor_embedding_norms, class_embedding_sums, cosine_map_to_means,
                          cosine_to_means, ema_update_means, gather_unit_embeddings, means_from_sums,
                          modified_sigmoid, modified_sigmoid_log_prob, modified_sigmoid_logit,
                          unit_embeddings)
from .iou_encoding import (box_sums, intersect_decode, intersect_encode, iou_encode, proto_size,
                           same_padding)
from .net2vec import area_axes, concept_masks, net2vec_loss
from .object_context import (object_context, pixel_region_relation, soft_object_regions,
                             spatial_gather)
from .point_rend import (grid_indices_to_coords, point_labels, point_sample, point_uncertainty,
                         scatter_point_logits, training_point_counts,
                         uncertain_point_coords_with_randomness, uncertain_point_indices_on_grid)
from .precision import computed_in_fp32

__all__ = [
    'inner_boundary', 'boundary_intersect_and_union', 'class_boundary_iou',
    'ClassCountError', 'check_class_count', 'check_label_range', 'check_boxes', 'check_feature_channels',
    'check_coarse_logits', 'check_required_keys', 'check_no_init_override',
    'unit_embeddings', 'cosine_to_means', 'anchor_embedding_norms', 'cosine_map_to_means',
    'gather_unit_embeddings', 'modified_sigmoid_log_prob', 'modified_sigmoid',
    'modified_sigmoid_logit',
    'class_embedding_sums', 'ema_update_means', 'means_from_sums',
    'proto_size', 'same_padding', 'box_sums', 'intersect_encode', 'iou_encode', 'intersect_decode',
    'area_axes', 'net2vec_loss', 'concept_masks',
    'soft_object_regions', 'spatial_gather', 'pixel_region_relation', 'object_context',
    'point_sample', 'point_uncertainty', 'training_point_counts',
    'uncertain_point_coords_with_randomness', 'grid_indices_to_coords',
    'uncertain_point_indices_on_grid', 'scatter_point_logits', 'point_labels',
    'computed_in_fp32',
]

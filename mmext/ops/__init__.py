"""Pure tensor functions behind the mmext methods (no registries, no OpenMMLab imports)."""
from .object_context import (object_context, pixel_region_relation, soft_object_regions,
                             spatial_gather)

__all__ = ['soft_object_regions', 'spatial_gather', 'pixel_region_relation', 'object_context']

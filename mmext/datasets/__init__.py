"""Dataset generators shared by the mmseg and mmdet plugins (pure numpy, no registries)."""
from .synthetic_shapes import (CLASSES, DEFAULT_DATA_ROOT, PALETTE, SynthesizeOnInitMixin,
                               ensure_synthetic_shapes, render_scene, write_dataset)

__all__ = [
    'CLASSES', 'DEFAULT_DATA_ROOT', 'PALETTE', 'SynthesizeOnInitMixin', 'ensure_synthetic_shapes',
    'render_scene', 'write_dataset'
]

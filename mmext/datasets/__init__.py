"""The synthetic shapes dataset shared by the mmseg and mmdet plugins (no registries).

``shape_scenes`` renders one scene (pure numpy), ``dataset_folder`` writes and installs a dataset
folder, ``synthesize_on_init`` is the mixin through which the registered datasets generate it.
"""
from .dataset_folder import DEFAULT_DATA_ROOT, ensure_synthetic_shapes, write_dataset
from .shape_scenes import CLASSES, PALETTE, render_scene
from .synthesize_on_init import SynthesizeOnInitMixin

__all__ = [
    'CLASSES', 'DEFAULT_DATA_ROOT', 'PALETTE', 'SynthesizeOnInitMixin', 'ensure_synthetic_shapes',
    'render_scene', 'write_dataset'
]

"""mmdetection plugins: the DLDE head and its means hook, the synthetic shapes dataset and the
class-range hook.

Needs mmdetection (with mmcv and mmengine), not mmsegmentation. Importing this package registers its
classes into ``mmdet.registry`` (``custom_imports=dict(imports=['mmext.det'])``) and installs mmext's
mmengine patches.
"""
from mmext.engine import patch_mmengine

patch_mmengine()

from . import datasets, heads, hooks  # noqa: E402,F401  (registers the plugins)


def register_all_modules(init_default_scope: bool = True) -> None:
    """mmdet's ``register_all_modules`` (its modules, and ``default_scope='mmdet'`` if asked); mmext's
    were registered when this package was imported."""
    from mmdet.utils import register_all_modules as register_mmdet_modules
    register_mmdet_modules(init_default_scope)

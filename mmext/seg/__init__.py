"""mmsegmentation plugins: the OCR, PointRend and Net2Vec heads, the Net2Vec loss, IoU mask encoding,
the boundary and set IoU metrics, the synthetic shapes dataset and the class-range hook.

Needs mmsegmentation (with mmcv and mmengine), not mmdetection. Importing this package registers its
classes into ``mmseg.registry`` (``custom_imports=dict(imports=['mmext.seg'])``) and installs mmext's
mmengine patches.
"""
from mmext.engine import patch_mmengine

patch_mmengine()

from . import datasets, evaluation, heads, hooks, losses  # noqa: E402,F401  (registers the plugins)


def register_all_modules(init_default_scope: bool = True) -> None:
    """mmseg's ``register_all_modules`` (its modules, and ``default_scope='mmseg'`` if asked); mmext's
    were registered when this package was imported."""
    from mmseg.utils import register_all_modules as register_mmseg_modules
    register_mmseg_modules(init_default_scope)

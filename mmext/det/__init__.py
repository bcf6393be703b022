"""mmdetection plugins: the DLDE head and its means hook, the synthetic shapes dataset and the
class-range hook.

Needs mmdetection (with mmcv and mmengine), not mmsegmentation. Importing this package registers its
classes into ``mmdet.registry`` (``custom_imports=dict(imports=['mmext.det'])``) and installs mmext's
mmengine patches.
"""
from mmext.engine import patch_mmengine
from mmext.hosts import host_register_all_modules

patch_mmengine()

from . import datasets, heads, hooks  # noqa: E402,F401  (registers the plugins)

register_all_modules = host_register_all_modules(__name__)

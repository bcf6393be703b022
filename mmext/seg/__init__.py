"""mmsegmentation plugins: the OCR, PointRend and Net2Vec heads, the Net2Vec loss, IoU mask encoding,
the boundary and set IoU metrics, the synthetic shapes dataset and the class-range hook.

Needs mmsegmentation (with mmcv and mmengine), not mmdetection. Importing this package registers its
classes into ``mmseg.registry`` (``custom_imports=dict(imports=['mmext.seg'])``) and installs mmext's
mmengine patches.
"""
from mmext.engine import patch_mmengine
from mmext.hosts import host_register_all_modules

patch_mmengine()

from . import datasets, evaluation, heads, hooks, losses  # noqa: E402,F401  (registers the plugins)

register_all_modules = host_register_all_modules(__name__)

"""mmext: OpenMMLab plugins for mmsegmentation and mmdetection.

Importing ``mmext`` registers every mmext class into the host libraries' registries, which is all
``custom_imports = dict(imports=['mmext'], allow_failed_imports=False)`` needs, and installs mmext's
mmengine patches (:func:`mmext.engine.patch_mmengine`): checkpoints load through one restricted loader
under torch's ``weights_only`` unpickler, config text stored in checkpoints is never executed, and
checkpoints are saved atomically.
"""
# Import the hosts' model packages first: their registries fill lazily, so a name clash with an mmext
# class would otherwise surface later, at the first build, instead of here.
import mmdet.models  # noqa: F401
import mmseg.models  # noqa: F401

from .engine import patch_mmengine

patch_mmengine()

from . import det, seg  # noqa: E402,F401  (registers the plugins)

__version__ = '0.1.0'

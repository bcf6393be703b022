"""mmext: OpenMMLab plugins for mmsegmentation and mmdetection.

Importing ``mmext`` registers every mmext class into the host libraries' registries, which is all
``custom_imports = dict(imports=['mmext'], allow_failed_imports=False)`` needs, and makes mmengine
load OpenMMLab checkpoints under torch's ``weights_only`` unpickler with an exact allow-list.
"""
# Import the hosts' model packages first: their registries fill lazily, so a name clash with an mmext
# class would otherwise surface later, at the first build, instead of here.
import mmdet.models  # noqa: F401
import mmseg.models  # noqa: F401

from .runner import install_safe_checkpoint_loading

install_safe_checkpoint_loading()

from . import det, seg  # noqa: E402,F401  (registers the plugins)
from . import engine  # noqa: E402,F401  (atomic checkpoint saving)

__version__ = '0.1.0'

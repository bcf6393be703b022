"""mmext: OpenMMLab plugins for mmsegmentation and mmdetection.

``custom_imports = dict(imports=['mmext'], allow_failed_imports=False)`` (or ``import mmext``) registers
mmext's classes into whichever of mmsegmentation and mmdetection are installed, and logs which
(:mod:`mmext.hosts`); with neither installed it raises ``ImportError``. To plug into one host only,
import its package: ``imports=['mmext.seg']`` needs only mmseg, ``imports=['mmext.det']`` only mmdet.

Registering installs mmext's mmengine patches (:func:`mmext.engine.patch_mmengine`: checkpoints load
through one restricted loader, config text stored in checkpoints is never executed, checkpoints are
saved atomically). The pure parts (:mod:`mmext.ops`, :mod:`mmext.datasets`) import no OpenMMLab package
and patch nothing.
"""
from .hosts import register_installed_hosts

__version__ = '0.1.0'

#: Each installed host's mmext package and whether it is registered yet (see :mod:`mmext.hosts`).
registered = register_installed_hosts()

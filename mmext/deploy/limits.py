"""Bounds on what mmext.deploy builds from the files it is handed, checked before a backend or an image
decoder allocates anything (docs/deploy.md, "Security").

Both bounds are far above what mmext's exports and datasets need and far below what hurts a machine. A
user who needs more raises a bound for one model, or for a process through the environment:

    DeployedModel(export_dir, limits=DeployLimits(max_image_pixels=200_000_000))

    MMEXT_DEPLOY_LIMITS="max_tensor_bytes=1073741824" tools/deploy/infer.py ...
"""
import dataclasses
from typing import Optional

from mmext.limits import limits_from_environment
from .spec import DeployError

ENV_VAR = 'MMEXT_DEPLOY_LIMITS'


@dataclasses.dataclass(frozen=True)
class DeployLimits:
    """Args:
        max_tensor_bytes (int): Largest tensor an ONNX file may store or a backend may compute from its
            constants when loading it; also the most that all the computed ones may take together.
        max_image_pixels (int): Largest image (width x height) :func:`load_images` decodes from a file:
            8192 x 8192 by default.
    """
    max_tensor_bytes: int = 256 * 2**20
    max_image_pixels: int = 2**26


def deploy_limits(limits: Optional[DeployLimits] = None) -> DeployLimits:
    """``limits`` if given, else the environment's (:data:`ENV_VAR`), else the defaults."""
    return limits if limits is not None else limits_from_environment(DeployLimits, ENV_VAR, DeployError)

"""Fake inputs and small model helpers for tests and measurements (as ``mmdet.testing``); not imported
by ``import mmext``."""
from .configs import tiny_config
from .models import build_seg_head, parameter_grads
from .precision import autocast_deviation, exact_fp32
from .tools import last_metrics, run_tool
from .samples import (det_samples, dummy_batch, random_boxes, random_like_shapes, scene_image, seg_samples,
                      seg_samples_from_labels)

__all__ = ['seg_samples', 'seg_samples_from_labels', 'det_samples', 'random_boxes', 'dummy_batch',
           'random_like_shapes', 'scene_image', 'build_seg_head', 'parameter_grads', 'autocast_deviation',
           'exact_fp32', 'run_tool', 'last_metrics', 'tiny_config']

"""Fake inputs for tests and measurements (as ``mmdet.testing``); not imported by ``import mmext``."""
from .samples import det_samples, dummy_batch, random_boxes, random_like_shapes, seg_samples

__all__ = ['seg_samples', 'det_samples', 'random_boxes', 'dummy_batch', 'random_like_shapes']

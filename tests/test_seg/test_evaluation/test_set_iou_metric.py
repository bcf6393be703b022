"""SetIoUMetric: per-class intersection over union summed over the dataset, hand-computed."""
import math

import pytest
import torch

from mmext.seg.evaluation import SetIoUMetric


def _sample(pred, label):
    return dict(pred_sem_seg=dict(data=torch.tensor(pred)[None]),
                gt_sem_seg=dict(data=torch.tensor(label)[None]))


def _metric(classes=('background', 'ring'), **kwargs):
    metric = SetIoUMetric(**kwargs)
    metric.dataset_meta = dict(classes=classes)
    return metric


def test_set_iou_sums_over_images_before_dividing():
    # Image 1: concept I = 1, U = 1 (IoU 1). Image 2: I = 1, U = 3 (IoU 1/3).
    # Set IoU = 2 / 4 = 50, not the mean 66.67 of the per-image IoUs.
    metric = _metric()
    metric.process({}, [_sample([[1, 0], [0, 0]], [[1, 0], [0, 0]])])
    metric.process({}, [_sample([[1, 1], [1, 0]], [[1, 0], [0, 255]])])
    result = metric.evaluate(2)
    assert result['IoU.ring'] == 50.0
    # Background: image 1 I = 3, U = 3; image 2 (pixel (1, 1) ignored) I = 0, U = 2 -> 3 / 5.
    assert result['mIoU'] == pytest.approx((50.0 + 60.0) / 2)


def test_selected_classes_and_empty_union():
    metric = _metric(classes=('background', 'disk', 'ring'))
    metric.process({}, [_sample([[0, 2]], [[0, 2]])])
    result = metric.evaluate(1)
    assert result['IoU.ring'] == 100.0 and math.isnan(result['IoU.disk'])
    only = SetIoUMetric(classes=['ring'])
    only.dataset_meta = dict(classes=('background', 'disk', 'ring'))
    only.process({}, [_sample([[0, 2]], [[0, 2]])])
    assert 'IoU.disk' not in only.evaluate(1)


def test_unknown_class_is_named():
    metric = SetIoUMetric(classes=['hexagon'])
    metric.dataset_meta = dict(classes=('background', 'ring'))
    metric.process({}, [_sample([[0, 1]], [[0, 1]])])
    with pytest.raises(ValueError, match='hexagon'):
        metric.evaluate(1)

"""BoundaryIoUMetric: mBIoU over a dataset through process / evaluate, hand-computed."""
import math

import pytest
import torch

from mmext.seg.evaluation import BoundaryIoUMetric
from mmext.seg.evaluation.metrics import boundary_iou_metric


def _halves(split, height=4, width=6):
    """(1, H, W) map: class 1 in the columns left of ``split``, class 0 from ``split`` on."""
    seg = torch.zeros(1, height, width, dtype=torch.long)
    seg[:, :, :split] = 1
    return seg


def _sample(pred, label):
    return dict(pred_sem_seg=dict(data=pred), gt_sem_seg=dict(data=label))


def _metric(classes=('background', 'object'), **kwargs):
    metric = BoundaryIoUMetric(**kwargs)
    metric.dataset_meta = dict(classes=classes)
    return metric


def test_perfect_prediction_gives_100():
    metric = _metric()  # default width 3: class 1's band is columns 0..2, class 0's 3..5
    metric.process({}, [_sample(_halves(3), _halves(3))])
    assert metric.evaluate(1) == {'mBIoU': 100.0}


def test_counts_are_summed_over_images():
    # Width 1. Image 1 is perfect: 4 / 4 for both classes. Image 2 is shifted by one column: 0 / 8.
    # Dataset BIoU is 4 / 12 for both classes: 33.33, not the mean 50 of the per-image scores.
    metric = _metric(boundary_width=1)
    metric.process({}, [_sample(_halves(3), _halves(3))])
    metric.process({}, [_sample(_halves(4), _halves(3))])
    assert metric.evaluate(2) == {'mBIoU': 33.33}


def test_label_is_cast_to_the_prediction_dtype():
    metric = _metric(boundary_width=1)
    metric.process({}, [_sample(_halves(4), _halves(3).to(torch.uint8))])
    assert metric.evaluate(1) == {'mBIoU': 0.0}


def test_absent_class_is_left_out_of_the_mean():
    # Shifted by one column with width 2: 4 / 12 for classes 0 and 1; class 2 is in no band.
    metric = _metric(classes=('background', 'object', 'unused'), boundary_width=2)
    metric.process({}, [_sample(_halves(4), _halves(3))])
    assert metric.evaluate(1) == {'mBIoU': 33.33}


def test_ignored_pixels_are_left_out():
    # 4 x 8: class 1 in columns 0..1, class 0 in 2..6, column 7 ignored and predicted as class 1.
    # Width 1 leaves out columns 6..7; the contour 1 | 2 matches: 4 / 4 for both classes.
    label = torch.zeros(1, 4, 8, dtype=torch.long)
    label[..., :2] = 1
    label[..., 7] = 255
    pred = label.clone()
    pred[..., 7] = 1
    metric = _metric(boundary_width=1)
    metric.process({}, [_sample(pred, label)])
    assert metric.evaluate(1) == {'mBIoU': 100.0}


def test_per_class_table_is_logged(monkeypatch):
    messages = []
    monkeypatch.setattr(boundary_iou_metric, 'print_log', lambda msg, logger=None: messages.append(msg))
    metric = _metric(classes=('background', 'object', 'unused'), boundary_width=2)
    metric.process({}, [_sample(_halves(4), _halves(3))])
    metric.evaluate(1)
    log = '\n'.join(messages)
    assert 'width 2 px' in log
    rows = {line.split('|')[1].strip(): line.split('|')[2].strip() for line in log.splitlines()
            if line.startswith('|') and 'Class' not in line}
    assert rows['background'] == rows['object'] == '33.33'
    assert math.isnan(float(rows['unused']))


def test_prefix_is_applied():
    metric = _metric(prefix='val')
    metric.process({}, [_sample(_halves(3), _halves(3))])
    assert metric.evaluate(1) == {'val/mBIoU': 100.0}


def test_non_positive_width_is_refused():
    with pytest.raises(ValueError, match='boundary_width'):
        BoundaryIoUMetric(boundary_width=0)


def test_built_from_the_mmseg_registry():
    from mmseg.registry import METRICS

    import mmext  # noqa: F401  (registers the plugins)

    metric = METRICS.build(dict(type='BoundaryIoUMetric'))
    assert isinstance(metric, BoundaryIoUMetric)
    assert (metric.boundary_width, metric.ignore_index) == (3, 255)
    assert METRICS.build(dict(type='BoundaryIoUMetric', boundary_width=5)).boundary_width == 5


def test_single_row_images_keep_their_shape():
    # A 1 x 6 image, width 1: class 1 in columns 0..2, predicted in 0..3; bands are columns 2 | 3
    # (label) and 3 | 4 (prediction): class 1 0 / 2, class 0 0 / 2.
    metric = _metric(boundary_width=1)
    metric.process({}, [_sample(_halves(4, height=1), _halves(3, height=1))])
    assert metric.evaluate(1) == {'mBIoU': 0.0}


def test_no_results_give_nan():
    assert math.isnan(_metric().compute_metrics([])['mBIoU'])

"""DetClassCheckHook: a head whose num_classes differs from the dataset's is refused before every
training, validation and testing epoch, with the config key named; the RPN's single class is not
compared. Also through a Runner of a tiny config with configs/_base_/det_runtime.py's hooks."""
from types import SimpleNamespace

import pytest
import torch

import mmext  # noqa: F401  (registers mmdet's and mmext's modules)
from mmext.det.hooks import DetClassCheckHook
from mmext.ops import ClassCountError


def _head(num_classes):
    head = torch.nn.Module()
    head.num_classes = num_classes
    return head


def _runner(bbox_classes=3, roi_classes=3, classes=('a', 'b', 'c')):
    model = torch.nn.Module()
    model.rpn_head = _head(1)  # objectness: never the dataset's classes
    model.roi_head = torch.nn.Module()
    model.roi_head.bbox_head = _head(roi_classes)
    model.bbox_head = _head(bbox_classes)
    loader = SimpleNamespace(dataset=SimpleNamespace(metainfo=dict(classes=classes)))
    return SimpleNamespace(model=model, train_dataloader=loader, val_dataloader=loader,
                           test_dataloader=loader)


def test_matching_heads_pass_and_the_rpn_is_not_compared():
    runner = _runner()
    hook = DetClassCheckHook()
    hook.before_train_epoch(runner), hook.before_val_epoch(runner), hook.before_test_epoch(runner)


def test_undeclared_classes_are_not_checked():
    DetClassCheckHook().before_test_epoch(_runner(bbox_classes=5, classes=None))


@pytest.mark.parametrize('stage, split', [('before_train_epoch', 'train'), ('before_val_epoch', 'val'),
                                          ('before_test_epoch', 'test')])
def test_mismatch_names_the_key_before_every_stage(stage, split):
    with pytest.raises(ClassCountError) as error:
        getattr(DetClassCheckHook(), stage)(_runner(roi_classes=5))
    assert str(error.value) == (
        f"model.roi_head.bbox_head.num_classes=5, but the {split} dataset (SimpleNamespace) has 3 classes "
        "('a', 'b', 'c'); set num_classes=3 in every head of the detector.")
    assert isinstance(error.value, AssertionError)  # what mmdet's NumClassCheckHook raises


@pytest.mark.parametrize('mode', ['train', 'val', 'test'])
def test_det_num_classes_mismatch_refused(tiny_runner, mode):
    runner = tiny_runner('dlde_tiny',
                         {'model.bbox_head.num_classes': 3, 'model.bbox_head.means_update': 'batch'},
                         runtime='det_runtime')
    with pytest.raises(AssertionError, match=r'num_classes.*\b3\b.*\b5\b'):  # mmdet's check
        getattr(runner, mode)()


# -- the ground truth of every training batch, once (never again inside a head) ------------------------

def _batch(*instances):
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    samples = [DetDataSample(gt_instances=InstanceData(bboxes=torch.tensor(boxes).reshape(-1, 4),
                                                       labels=torch.tensor(labels, dtype=torch.long)))
               for boxes, labels in instances]
    return dict(inputs=[], data_samples=samples)


def test_well_formed_ground_truth_passes_and_empty_images_too():
    batch = _batch(([[0.0, 0.0, 4.0, 2.0], [1.0, 1.0, 1.0, 3.0]], [0, 2]), ([], []))
    DetClassCheckHook().before_train_iter(_runner(), 0, batch)


def test_label_at_num_classes_names_the_head():
    with pytest.raises(ValueError) as error:
        DetClassCheckHook().before_train_iter(_runner(), 0, _batch(([[0.0, 0.0, 4.0, 2.0]] * 2, [1, 2]),
                                                                   ([[0.0, 0.0, 4.0, 2.0]], [3])))
    assert str(error.value) == (
        'DetClassCheckHook (model.roi_head.bbox_head): the ground-truth label 3 is out of range: labels '
        'span 1..3, but num_classes=3 allows 0..2; set num_classes to the number of classes of the '
        'dataset in every head.')


@pytest.mark.parametrize('boxes, labels, match', [
    ([[30.0, 12.0, 10.0, 40.0]], [1], r'^DetClassCheckHook: a ground-truth box has x2 < x1 or y2 < y1.*'
                                      r'not \(x, y, w, h\)'),
    ([[0.0, 0.0, 4.0, 2.0]], [-1], r'labels span -1\.\.-1, but num_classes=3 allows 0\.\.2'),
], ids=['inverted-box', 'negative-label'])
def test_malformed_ground_truth_is_refused(boxes, labels, match):
    with pytest.raises(ValueError, match=match):
        DetClassCheckHook().before_train_iter(_runner(), 0, _batch((boxes, labels)))


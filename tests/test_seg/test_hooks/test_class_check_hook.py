"""SegClassCheckHook: labels that do not fit num_classes are refused with the config key named, and a
config whose heads disagree with the dataset stops before training or evaluation, through a Runner."""
from types import SimpleNamespace

import pytest
import torch
from mmengine.structures import PixelData
from mmseg.models.decode_heads import FCNHead
from mmseg.structures import SegDataSample

from mmext.seg.hooks import SegClassCheckHook
from mmext.testing import build_seg_head, seg_samples_from_labels


def _runner(num_classes=4):
    """A runner stand-in whose model is one mmseg decode head."""
    model = torch.nn.Module()
    model.decode_head = build_seg_head(FCNHead, in_channels=3, channels=2, num_classes=num_classes)
    return SimpleNamespace(model=model)


def _batch(*labels):
    samples = []
    for label in labels:
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(data=torch.tensor(label)[None])
        samples.append(sample)
    return dict(inputs=[], data_samples=samples)


def test_labels_below_num_classes_and_ignore_index_pass():
    SegClassCheckHook().before_train_iter(_runner(), 0, _batch([[0, 3], [255, 2]]))


def test_label_at_num_classes_is_refused():
    with pytest.raises(ValueError, match=r'label 4 .*num_classes=4'):
        SegClassCheckHook().before_train_iter(_runner(), 0, _batch([[0, 1]], [[4, 255]]))


def test_dataset_class_count_mismatch_is_refused():
    runner = _runner(num_classes=4)
    runner.val_dataloader = SimpleNamespace(dataset=SimpleNamespace(metainfo=dict(classes='abc')))
    with pytest.raises(ValueError, match=r'model\.decode_head\.num_classes=4.*3 classes'):
        SegClassCheckHook().before_val(runner)


def test_mismatch_error_is_also_mmdets_assertion_error():
    runner = _runner(num_classes=4)
    runner.test_dataloader = SimpleNamespace(dataset=SimpleNamespace(metainfo=dict(classes=('a', 'b'))))
    with pytest.raises(AssertionError, match=r"model\.decode_head\.num_classes=4, but the test dataset "
                                             r"\(SimpleNamespace\) has 2 classes \('a', 'b'\)"):
        SegClassCheckHook().before_test(runner)


def test_seg_label_beyond_num_classes_refused_at_the_batch():
    batch = dict(inputs=[], data_samples=seg_samples_from_labels(torch.tensor([[[0, 4], [255, 1]]])))
    with pytest.raises(ValueError, match=r'label 4 .*num_classes=4'):
        SegClassCheckHook().before_train_iter(_runner(num_classes=4), 0, batch)


def test_class_check_hook_accepts_all_ignore_batch():
    batch = dict(inputs=[], data_samples=seg_samples_from_labels(torch.full((2, 4, 4), 255)))
    SegClassCheckHook().before_train_iter(_runner(num_classes=3), 0, batch)


# -- through a Runner of a tiny config with configs/_base_/seg_runtime.py's hooks -----------------------

@pytest.mark.parametrize('options, match', [
    ({'model.decode_head.0.num_classes': 4, 'model.decode_head.1.num_classes': 4},
     r'model\.decode_head\.0\.num_classes=4, but the train dataset .* has 6 classes'),
    ({'model.decode_head.0.num_classes': 5}, r'model\.decode_head\.0\.num_classes=5, but the train'),
], ids=['both-heads', 'first-stage-only'])
def test_seg_num_classes_mismatch_refused_before_training(tiny_runner, options, match):
    runner = tiny_runner('ocr_tiny', options, runtime='seg_runtime')
    with pytest.raises(ValueError, match=match):
        runner.train()
    assert not runner.optim_wrapper.optimizer.state  # no step was taken


@pytest.mark.parametrize('mode', ['val', 'test'])
def test_seg_num_classes_mismatch_refused_before_evaluation(tiny_runner, mode):
    runner = tiny_runner('pointrend_tiny',
                         {'model.decode_head.0.num_classes': 7, 'model.decode_head.1.num_classes': 7},
                         runtime='seg_runtime')
    with pytest.raises(ValueError, match=rf'num_classes=7, but the {mode} dataset .* has 6 classes'):
        getattr(runner, mode)()

"""SegClassCheckHook: labels that do not fit num_classes are refused with the config key named."""
from types import SimpleNamespace

import pytest
import torch
from mmengine.structures import PixelData
from mmseg.models.decode_heads import FCNHead
from mmseg.structures import SegDataSample

from mmext.seg.hooks import SegClassCheckHook


def _runner(num_classes=4):
    model = torch.nn.Module()
    model.decode_head = FCNHead(in_channels=3, channels=2, num_classes=num_classes)
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

"""Shared input checks: which inputs pass, and the messages of those that do not."""
import pytest
import torch

from mmext.ops.checks import ClassCountError, check_boxes, check_class_count, check_label_range


def test_labels_within_range_and_ignore_index_pass():
    check_label_range(torch.tensor([[0, 3], [255, 2]]), 4, 'Head', 'fix it', ignore_index=255)
    check_label_range(torch.tensor([], dtype=torch.long), 4, 'Head', 'fix it')
    check_label_range(torch.full((2, 2), 255), 4, 'Head', 'fix it', ignore_index=255)  # all ignored


@pytest.mark.parametrize('labels, ignore_index, message', [
    ([0, 4, 255], 255, 'Head: the ground-truth label 4 is out of range: labels span 0..4 (without '
                       'ignore_index=255), but num_classes=4 allows 0..3; set num_classes.'),
    ([-1, 2], None, 'Head: the ground-truth label -1 is out of range: labels span -1..2, but num_classes=4 '
                    'allows 0..3; set num_classes.'),
    ([3, 255], None, 'Head: the ground-truth label 255 is out of range: labels span 3..255, but '
                     'num_classes=4 allows 0..3; set num_classes.'),
])
def test_label_out_of_range_message(labels, ignore_index, message):
    with pytest.raises(ValueError) as error:
        check_label_range(torch.tensor(labels), 4, 'Head', 'set num_classes', ignore_index=ignore_index)
    assert str(error.value) == message


def test_boxes():
    check_boxes(torch.tensor([[0.0, 0.0, 4.0, 2.0], [1.0, 1.0, 1.0, 3.0]]), 'Head')  # zero width passes
    check_boxes(torch.zeros(0, 4), 'Head')
    check_boxes(torch.tensor([[0.0, 0.0, float('inf'), 2.0]]), 'Head')  # FiniteCheckHook's to refuse
    with pytest.raises(ValueError, match=r'^Head: a ground-truth box has x2 < x1 or y2 < y1'):
        check_boxes(torch.tensor([[10.0, 10.0, 4.0, 20.0]]), 'Head')  # (x, y, w, h)
    with pytest.raises(ValueError, match=r'x2 < x1 or y2 < y1'):
        check_boxes(torch.tensor([[0.0, 5.0, 4.0, 4.0]]), 'Head')


def test_class_count():
    heads = [('decode_head.0', 3), ('decode_head.1', 3)]
    check_class_count(heads, ('a', 'b', 'c'), 'train', 'DS', 'everywhere')
    check_class_count(heads, None, 'train', 'DS', 'everywhere')  # classes not declared: no check
    with pytest.raises(ClassCountError) as error:
        check_class_count([('decode_head.0', 3), ('decode_head.1', 2)], ('a', 'b', 'c'), 'val', 'DS',
                          'in every head')
    assert str(error.value) == ("model.decode_head.1.num_classes=2, but the val dataset (DS) has 3 classes "
                                "('a', 'b', 'c'); set num_classes=3 in every head.")
    # One error type for both hosts: mmext's ValueError, mmdet's NumClassCheckHook AssertionError.
    assert isinstance(error.value, ValueError) and isinstance(error.value, AssertionError)

"""A hook that refuses a segmentor whose heads disagree with the dataset's classes."""
import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import HOOKS

from mmext.ops import check_class_count, check_label_range


def _decode_heads(runner):
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    return [(name, m) for name, m in model.named_modules() if isinstance(m, BaseDecodeHead)]


@HOOKS.register_module()
class SegClassCheckHook(Hook):
    """Check that every decode/auxiliary head predicts as many classes as the dataset has.

    Before training, validation and testing it compares each head's ``num_classes`` with
    ``len(dataset.metainfo['classes'])``; during training it checks that the labels of every batch
    (except ``ignore_index``) are below ``num_classes``. A mismatch raises ``ValueError`` naming the
    config key, instead of a silently wrong IoU or an index error inside the loss
    (:class:`~mmext.ops.ClassCountError`, also an ``AssertionError`` like mmdet's check).
    """

    priority = 'VERY_HIGH'

    def __init__(self):
        self._heads = None  # found once: the model's modules do not change during a run

    def _decode_heads(self, runner):
        if self._heads is None:
            self._heads = _decode_heads(runner)
        return self._heads

    def _check_dataset(self, runner, dataloader, split):
        check_class_count([(name, head.num_classes) for name, head in self._decode_heads(runner)],
                          dataloader.dataset.metainfo.get('classes'), split,
                          type(dataloader.dataset).__name__, fix='in every decode and auxiliary head')

    def before_train(self, runner) -> None:
        self._check_dataset(runner, runner.train_dataloader, 'train')

    def before_val(self, runner) -> None:
        self._check_dataset(runner, runner.val_dataloader, 'val')

    def before_test(self, runner) -> None:
        self._check_dataset(runner, runner.test_dataloader, 'test')

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        samples = (data_batch or {}).get('data_samples') or []
        labels = [s.gt_sem_seg.data for s in samples if 'gt_sem_seg' in s]
        if not labels:
            return
        labels = torch.cat([label.flatten() for label in labels])
        for _, head in self._decode_heads(runner):
            check_label_range(labels, head.num_classes, type(head).__name__, ignore_index=head.ignore_index,
                              fix="set the heads' num_classes to the number of classes of the dataset")

"""A hook that refuses a detector whose heads disagree with the dataset's classes."""
import torch
from mmcv.cnn import VGG
from mmdet.models.roi_heads.mask_heads import FusedSemanticHead
from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmext.ops import check_boxes, check_class_count, check_label_range


def _class_heads(model):
    """(name, num_classes) of the modules that predict the dataset's classes: mmdet's choice, every
    module with a ``num_classes`` but the RPN (objectness), VGG (its ImageNet classifier) and the
    HTC ``FusedSemanticHead`` (stuff classes)."""
    model = model.module if is_model_wrapper(model) else model
    return [(name, m.num_classes) for name, m in model.named_modules()
            if hasattr(m, 'num_classes') and not name.endswith('rpn_head')
            and not isinstance(m, (VGG, FusedSemanticHead))]


@HOOKS.register_module()
class DetClassCheckHook(Hook):
    """Check that every head of a detector predicts as many classes as the dataset has.

    mmdet's ``NumClassCheckHook`` checks training and validation only, so ``tools/test.py`` with a
    head of the wrong ``num_classes`` would map the predicted labels to the wrong categories and
    report a wrong mAP. This hook compares each head's ``num_classes`` with
    ``len(dataset.metainfo['classes'])`` before every training, validation and testing epoch, and raises
    :class:`~mmext.ops.ClassCountError` naming the config key; it is a ``ValueError`` like
    ``SegClassCheckHook``'s and an ``AssertionError`` like mmdet's. During training it checks the ground
    truth of every batch once: labels in 0..num_classes-1 and boxes as (x1, y1, x2, y2), not (x, y, w, h)
    (``ValueError``), instead of an index error in the loss or boxes learnt inside out.
    """

    priority = 'VERY_HIGH'

    def __init__(self):
        self._num_classes = None  # found once: the model's modules do not change during a run

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        samples = (data_batch or {}).get('data_samples') or []
        instances = [s.gt_instances for s in samples if 'gt_instances' in s]
        if not instances:
            return
        labels = torch.cat([i.labels.flatten() for i in instances])
        boxes = torch.cat([getattr(i.bboxes, 'tensor', i.bboxes).reshape(-1, 4) for i in instances])
        if self._num_classes is None:
            self._num_classes = _class_heads(runner.model)
        for name, num_classes in self._num_classes:
            check_label_range(labels, num_classes, f'DetClassCheckHook (model.{name})',
                              fix='set num_classes to the number of classes of the dataset in every head')
        check_boxes(boxes, 'DetClassCheckHook')

    def _before_epoch(self, runner, mode: str = 'train') -> None:
        """Before every training, validation and testing epoch (when mmdet's hook checks too)."""
        dataloader = getattr(runner, f'{mode}_dataloader')
        check_class_count(_class_heads(runner.model), dataloader.dataset.metainfo.get('classes'), mode,
                          type(dataloader.dataset).__name__, fix='in every head of the detector')

"""A hook that refuses a detector whose heads disagree with the dataset's classes."""
from mmcv.cnn import VGG
from mmdet.models.roi_heads.mask_heads import FusedSemanticHead
from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmext.ops import check_class_count


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
    ``SegClassCheckHook``'s and an ``AssertionError`` like mmdet's.
    """

    priority = 'VERY_HIGH'

    def _before_epoch(self, runner, mode: str = 'train') -> None:
        """Before every training, validation and testing epoch (when mmdet's hook checks too)."""
        dataloader = getattr(runner, f'{mode}_dataloader')
        check_class_count(_class_heads(runner.model), dataloader.dataset.metainfo.get('classes'), mode,
                          type(dataloader.dataset).__name__, fix='in every head of the detector')

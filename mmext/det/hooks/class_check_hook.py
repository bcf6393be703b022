"""mmdet's class-count check, extended to testing."""
from types import SimpleNamespace

from mmdet.engine.hooks import NumClassCheckHook
from mmdet.registry import HOOKS


@HOOKS.register_module()
class DetClassCheckHook(NumClassCheckHook):
    """mmdet's ``NumClassCheckHook``, which compares every head's ``num_classes`` with the dataset's
    classes before training and validation epochs, also before testing.

    mmdet checks training and validation only, so ``tools/test.py`` with a head of the wrong
    ``num_classes`` would map the predicted labels to the wrong categories and report a wrong mAP.
    """

    def before_test_epoch(self, runner) -> None:
        # mmdet's check reads the val dataloader for any mode but 'train': hand it the test one.
        view = SimpleNamespace(model=runner.model, logger=runner.logger,
                               val_dataloader=runner.test_dataloader)
        self._check_head(view, 'val')

"""A hook that stops a run at the first NaN or Inf model input or training loss, before an optimizer
step spreads it into the weights."""
import functools
from typing import List

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


def _finite(tensor: torch.Tensor) -> bool:
    return not tensor.is_floating_point() or bool(torch.isfinite(tensor).all())


def _names(samples, indices: List[int]) -> str:
    names = []
    for i in indices:
        meta = samples[i].metainfo if i < len(samples) else {}
        names.append(str(meta.get('img_path', f'image {i} of the batch')))
    return ', '.join(names)


def _check_batch(preprocessor, args, data) -> None:
    """Forward hook of the data preprocessor; ``data`` is its output (``inputs``, ``data_samples``)."""
    if not isinstance(data, dict):
        return
    inputs, samples = data.get('inputs'), data.get('data_samples') or []
    if isinstance(inputs, torch.Tensor):
        inputs = list(inputs)
    if isinstance(inputs, (list, tuple)) and all(isinstance(t, torch.Tensor) for t in inputs):
        bad = [i for i, image in enumerate(inputs) if not _finite(image)]
        if bad:
            raise ValueError(
                f'FiniteCheckHook: NaN or Inf in the model input of {_names(samples, bad)} (after '
                'model.data_preprocessor). Such a pixel makes the loss NaN, and the next optimizer step '
                'turns every weight into NaN. Check the images and data_preprocessor.mean/std (a std of '
                '0 divides by zero).')
    bad = [i for i, s in enumerate(samples) if 'gt_instances' in s and 'bboxes' in s.gt_instances
           and not _finite(getattr(s.gt_instances.bboxes, 'tensor', s.gt_instances.bboxes))]
    if bad:
        raise ValueError(f'FiniteCheckHook: NaN or Inf in the ground-truth boxes of '
                         f'{_names(samples, bad)}; check the annotations and the box transforms.')


def _check_losses(runner, model, args, losses) -> None:
    """Forward hook of the model: in 'loss' mode it returns a dict of losses, before the backward."""
    if not isinstance(losses, dict):
        return  # 'predict' and 'tensor' modes
    for name, value in losses.items():
        values = [value] if isinstance(value, torch.Tensor) else value
        # Only the keys that mmengine's parse_losses sums into the backward (accuracies are logged only).
        if 'loss' not in name or not isinstance(values, (list, tuple)):
            continue
        if not all(_finite(v) for v in values if isinstance(v, torch.Tensor)):
            shown = ', '.join(f'{v.detach().float().mean().item():g}' for v in values)
            raise ValueError(
                f'FiniteCheckHook: {name} = {shown} at iteration {runner.iter + 1}, from finite '
                'inputs; its backward pass would turn the weights into NaN. Lower the learning rate, '
                'clip gradients (optim_wrapper.clip_grad) or look for degenerate ground truth.')


@HOOKS.register_module()  # mmengine's root registry: mmseg's and mmdet's HOOKS find it as their parent's
class FiniteCheckHook(Hook):
    """Raise at the first NaN or Inf in a model input, a ground-truth box or a training loss.

    mmengine trains on whatever arrives: a NaN or Inf pixel (float images, a ``data_preprocessor``
    std of 0) or box coordinate makes the loss NaN, the next optimizer step makes every weight NaN,
    and training goes on logging ``nan`` and saving NaN checkpoints. This hook checks

    * what the model's ``data_preprocessor`` returns (``inputs`` and ``gt_instances.bboxes``), in
      training, validation and testing;
    * in training, every loss the model returns, before the backward pass;

    and raises ``ValueError`` naming the images or the loss, so that no optimizer step sees them. It
    costs one reduction per tensor.

    Args:
        check_loss (bool): also check the training losses, which can be NaN from finite inputs (a
            too high learning rate, degenerate targets). Default: True.
    """

    priority = 'VERY_HIGH'

    def __init__(self, check_loss: bool = True):
        self.check_loss = check_loss
        self._handles = []

    def before_run(self, runner) -> None:
        self._remove_handles()  # a runner that trains and then tests calls before_run twice
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        self._handles.append(model.data_preprocessor.register_forward_hook(_check_batch))
        if self.check_loss:
            self._handles.append(model.register_forward_hook(functools.partial(_check_losses, runner)))

    def after_run(self, runner) -> None:
        self._remove_handles()

    def _remove_handles(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

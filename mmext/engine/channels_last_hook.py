"""A hook that runs a convolutional model in the channels-last (NHWC) memory format."""
from typing import Optional, Sequence

import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.optim import OptimWrapper
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


def to_channels_last(preprocessor, args, data):
    """Forward hook of the data preprocessor: its batched (B, C, H, W) ``inputs`` in channels-last."""
    if isinstance(data, dict) and isinstance(data.get('inputs'), torch.Tensor) and data['inputs'].dim() == 4:
        data['inputs'] = data['inputs'].contiguous(memory_format=torch.channels_last)
    return data


@HOOKS.register_module()  # mmengine's root registry: mmseg's and mmdet's HOOKS find it as their parent's
class ChannelsLastHook(Hook):
    """Put the model's 4-D parameters and buffers and every batch the data preprocessor returns in the
    channels-last memory format, before training, validation and testing.

    Args:
        precisions (tuple of str, optional): train in channels-last only when the optim wrapper runs in
            one of these ('fp32', 'bf16', 'fp16', see :func:`~mmext.engine.optim.wrapper_precision`),
            and leave runs without an optim wrapper (testing) alone; None: always. On the CPU measured,
            channels-last made the bf16 OCRNet train step 0.83x as long and the fp32 one 0.98x
            (docs/benchmarks.md), so ('bf16',) is the setting that pays there.

    oneDNN's CPU convolutions work in NHWC; in the default NCHW layout PyTorch reorders each
    convolution's input and output, forward and backward. In channels-last the reorders disappear and
    the layout propagates through element-wise ops, normalisation and pooling. The values are the same
    up to the order of floating-point sums. Checkpoints are unchanged: ``state_dict`` tensors keep their
    shapes, and ``torch.save`` stores their strides, which ``load_state_dict`` copies into the model's.
    """

    priority = 'VERY_HIGH'

    def __init__(self, precisions: Optional[Sequence[str]] = None):
        self.precisions = None if precisions is None else tuple(precisions)
        self._handle = None

    def _applies(self, runner) -> bool:
        if self.precisions is None:
            return True
        from .optim import wrapper_precision
        wrapper = getattr(runner, 'optim_wrapper', None)
        if not isinstance(wrapper, OptimWrapper):  # a test run, or a config not built into a wrapper
            return False
        precision = wrapper_precision(wrapper)
        print_log(f'ChannelsLastHook: {precision} training '
                  f'{"in" if precision in self.precisions else "not in"} channels-last '
                  f'(precisions={self.precisions})', logger='current')
        return precision in self.precisions

    def before_run(self, runner) -> None:
        if not self._applies(runner):
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        model.to(memory_format=torch.channels_last)
        if self._handle is None:  # a runner that trains and then tests calls before_run twice
            self._handle = model.data_preprocessor.register_forward_hook(to_channels_last)

    def after_run(self, runner) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

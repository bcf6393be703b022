"""A hook that runs a convolutional model in the channels-last (NHWC) memory format."""
import torch
from mmengine.hooks import Hook
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

    oneDNN's CPU convolutions work in NHWC; in the default NCHW layout PyTorch reorders each
    convolution's input and output, forward and backward. In channels-last the reorders disappear and
    the layout propagates through element-wise ops, normalisation and pooling. The values are the same
    up to the order of floating-point sums. Checkpoints are unchanged: ``state_dict`` tensors keep their
    shapes, and ``torch.save`` stores their strides, which ``load_state_dict`` copies into the model's.
    """

    priority = 'VERY_HIGH'

    def __init__(self):
        self._handle = None

    def before_run(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        model.to(memory_format=torch.channels_last)
        if self._handle is None:  # a runner that trains and then tests calls before_run twice
            self._handle = model.data_preprocessor.register_forward_hook(to_channels_last)

    def after_run(self, runner) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

"""fp32 for the strided convolutions whose CPU bf16 backward is wrong in torch 2.13.

Under ``torch.autocast('cpu', dtype=torch.bfloat16)``, torch 2.13's backward of a padded 2-d convolution
whose input is narrower than its stride (input width < stride width) returns wrong gradients: finite
garbage in most calls and inf/NaN in some, for the weight and the input, while the forward is right.
Measured on this project's CPU (AVX512-BF16) over every input of 1-5 x 1-5 pixels, strides 1-3 and 1x1 /
3x3 kernels: exactly the cases ``width < stride[-1]`` with a 3x3 kernel go wrong (all of them); 1x1
kernels, fp32 and CPU fp16 autocast are right. The height does not matter.

Detection hits it: RetinaNet's FPN makes its top level with a stride-2 3x3 convolution of the level below,
which is one pixel wide for images up to 64 px wide (``tests/configs/dlde_tiny.py --amp`` stopped at
iteration 2 with a NaN loss); at 128 px that input is 2 px wide and trains correctly. The guard runs those
convolutions, and only those, in fp32; their inputs are a few pixels, so the cost is nothing.
"""
import torch
from torch import nn


def narrower_than_stride(conv: nn.Conv2d, x: torch.Tensor) -> bool:
    """Whether ``x`` (N, C, H, W) is narrower than ``conv``'s stride: W < stride[-1]."""
    return x.shape[-1] < conv.stride[-1]


def _cpu_bf16_backward_ahead() -> bool:
    return (torch.is_grad_enabled() and torch.is_autocast_enabled('cpu')
            and torch.get_autocast_dtype('cpu') == torch.bfloat16)


class _Fp32WhenNarrow:
    """A conv's forward pre-hook and forward hook: between them, autocast is off and the input fp32
    when the input is narrower than the stride under CPU bf16 autocast with gradients on."""

    def __init__(self):
        self._autocast_off = []  # one entry per call in flight: the context to leave, or None

    def before(self, conv, args):
        x = args[0]
        if not (_cpu_bf16_backward_ahead() and narrower_than_stride(conv, x)):
            self._autocast_off.append(None)
            return None
        context = torch.autocast('cpu', enabled=False)
        context.__enter__()
        self._autocast_off.append(context)
        return (x.float(), ) + tuple(args[1:])

    def after(self, conv, args, output):
        context = self._autocast_off.pop()
        if context is not None:
            context.__exit__(None, None, None)


def guard_narrow_strided_convs(model: nn.Module) -> list:
    """Run ``model``'s strided ``nn.Conv2d`` layers in fp32 on inputs narrower than their stride, under
    CPU bf16 autocast with gradients on; elsewhere (wider inputs, inference, fp32, CUDA) nothing changes.

    Returns:
        list[torch.utils.hooks.RemovableHandle]: the hooks' handles (``handle.remove()`` undoes it).
    """
    handles = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d) and module.stride[-1] > 1:
            hooks = _Fp32WhenNarrow()
            handles.append(module.register_forward_pre_hook(hooks.before))
            handles.append(module.register_forward_hook(hooks.after, always_call=True))
    return handles

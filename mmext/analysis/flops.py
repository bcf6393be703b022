"""FLOP and parameter counting for benchmarks and ``tools/get_flops.py``.

Counting uses :class:`torch.utils.flop_counter.FlopCounterMode`, which sees every ATen op that runs,
whatever Python path calls it (a cascade's ``decode_head[i].forward``, PointRend's subdivision loop,
mmdet's ``predict``), so no tracing and no dense ``mode='tensor'`` output are needed.

Convention (torch's): a multiply-accumulate is 2 FLOPs, and only the ops with a registered formula
count: matmuls (``mm``, ``addmm``, ``bmm``, ``baddbmm``), convolutions (forward and backward) and
attention. Element-wise ops, norms, softmax, pooling, interpolation and ``grid_sample`` count 0. A
1x1 convolution from Cin to Cout channels on a (B, Cin, H, W) map is ``2 * B * Cin * Cout * H * W``
(its bias adds nothing). ``GMACs = GFLOPs / 2`` is the unit of fvcore / mmengine's
``get_model_complexity_info`` and of OpenMMLab model-zoo tables (which also count norms and
interpolation, so theirs can be slightly larger).
"""
import functools
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, Tuple

import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

# The entry points through which a model calls its parts: hooks on __call__ would miss the direct
# method calls (``decode_head[0].forward(x)``, ``bbox_head.predict(...)``) of OpenMMLab models.
COMPONENT_METHODS = ('forward', 'predict', 'loss')


def count_flops(fn: Callable[[], Any]) -> Tuple[Any, int]:
    """Run ``fn()`` once and count its FLOPs (2 per multiply-accumulate, see the module docstring).

    Returns:
        (the output of ``fn()``, the FLOP count as an int)
    """
    with FlopCounterMode(display=False) as counter:
        out = fn()
    return out, counter.get_total_flops()


def count_params(module: nn.Module) -> int:
    """Number of parameters (trainable or not) of a module; buffers do not count."""
    return sum(p.numel() for p in module.parameters())


def model_components(model: nn.Module) -> Dict[str, nn.Module]:
    """The top-level parts of an OpenMMLab model, by attribute name.

    Every child module except ``data_preprocessor``; a ``ModuleList`` child (a cascade's
    ``decode_head``, a list of auxiliary heads) gives one entry per element, ``'decode_head.0'``,
    ``'decode_head.1'``, ...
    """
    parts = {}
    for name, child in model.named_children():
        if name == 'data_preprocessor':
            continue
        if isinstance(child, nn.ModuleList):
            parts.update({f'{name}.{i}': sub for i, sub in enumerate(child)})
        else:
            parts[name] = child
    return parts


@contextmanager
def flops_per_component(components: Dict[str, nn.Module]) -> Iterator[Dict[str, int]]:
    """Count the FLOPs spent inside each component while the block runs.

    The instance methods ``forward``, ``predict`` and ``loss`` of each component are wrapped for
    the duration of the block (and restored after it): the outermost call into a component opens
    a ``FlopCounterMode`` whose count is added to that component; calls from within the component
    (``predict`` calling ``forward``) are not counted twice. The yielded dict fills in as the block
    runs. Combine it with an outer :func:`count_flops` for the total; their difference is work done
    outside every component (e.g. the segmentor's final resize, which counts 0 anyway).

    Args:
        components: name -> module, e.g. :func:`model_components`.

    Yields:
        dict: name -> FLOPs spent in that component so far.
    """
    counts = {name: 0 for name in components}
    active = set()

    def wrap(name: str, method: Callable) -> Callable:
        @functools.wraps(method)
        def counted(*args, **kwargs):
            if name in active:
                return method(*args, **kwargs)
            active.add(name)
            try:
                with FlopCounterMode(display=False) as counter:
                    out = method(*args, **kwargs)
            finally:
                active.discard(name)
            counts[name] += counter.get_total_flops()
            return out
        return counted

    wrapped = []
    try:
        for name, module in components.items():
            for attr in COMPONENT_METHODS:
                if callable(getattr(module, attr, None)) and attr not in vars(module):
                    setattr(module, attr, wrap(name, getattr(module, attr)))
                    wrapped.append((module, attr))
        yield counts
    finally:
        for module, attr in wrapped:
            delattr(module, attr)  # the class's method shows through again

"""How far a module's outputs and gradients move under autocast, for mixed-precision tests."""
import contextlib

import torch


def _relative(value, reference):
    return float((value.float() - reference.float()).norm() / reference.float().norm().clamp(min=1e-12))


@contextlib.contextmanager
def exact_fp32(device_type):
    """On CUDA, fp32 convolutions and matrix products without TF32 (cuDNN's default allows it, whose
    10-bit mantissa is fp16's): the reference pass is fp32. Nothing changes on CPU."""
    if device_type != 'cuda':
        yield
        return
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def autocast_deviation(module, forward, dtype):
    """Relative deviation of ``forward(module)`` and of the gradients of its mean under
    ``torch.autocast(device, dtype)`` from fp32, on the same weights (disable dropout first); the device
    is that of ``module``'s parameters (CPU or CUDA; the CUDA reference runs without TF32).

    Args:
        module (nn.Module): Its parameters receive the gradients (they are zeroed before each pass).
        forward (Callable[[nn.Module], Tensor]): One forward pass returning the output to compare.
        dtype (torch.dtype): torch.bfloat16 or torch.float16.

    Returns:
        tuple[float, float, bool]: ``||y_amp - y|| / ||y||``, ``||g_amp - g|| / ||g||`` of all the
        parameters' gradients as one vector, and whether every output and gradient is finite.
    """
    device_type = next(module.parameters()).device.type
    results = []
    for autocast in (False, True):
        module.zero_grad()
        with exact_fp32(device_type):
            with torch.autocast(device_type, dtype=dtype, enabled=autocast):
                output = forward(module)
            output.float().mean().backward()
        grads = {name: p.grad.clone() for name, p in module.named_parameters() if p.grad is not None}
        results.append((output.detach(), grads))
    (reference, reference_grads), (output, grads) = results
    finite = bool(torch.isfinite(output).all()) and all(bool(torch.isfinite(g).all()) for g in grads.values())
    grad_error = _relative(torch.cat([grads[name].flatten() for name in reference_grads]),
                           torch.cat([g.flatten() for g in reference_grads.values()]))
    return _relative(output, reference), grad_error, finite

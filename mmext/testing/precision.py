"""How far a module's outputs and gradients move under CPU autocast, for mixed-precision tests."""
import torch


def _relative(value, reference):
    return float((value.float() - reference.float()).norm() / reference.float().norm().clamp(min=1e-12))


def autocast_deviation(module, forward, dtype):
    """Relative deviation of ``forward(module)`` and of the gradients of its mean under
    ``torch.autocast('cpu', dtype)`` from fp32, on the same weights (disable dropout first).

    Args:
        module (nn.Module): Its parameters receive the gradients (they are zeroed before each pass).
        forward (Callable[[nn.Module], Tensor]): One forward pass returning the output to compare.
        dtype (torch.dtype): torch.bfloat16 or torch.float16.

    Returns:
        tuple[float, float, bool]: ``||y_amp - y|| / ||y||``, ``||g_amp - g|| / ||g||`` of all the
        parameters' gradients as one vector, and whether every output and gradient is finite.
    """
    results = []
    for autocast in (False, True):
        module.zero_grad()
        with torch.autocast('cpu', dtype=dtype, enabled=autocast):
            output = forward(module)
        output.float().mean().backward()
        grads = {name: p.grad.clone() for name, p in module.named_parameters() if p.grad is not None}
        results.append((output.detach(), grads))
    (reference, reference_grads), (output, grads) = results
    finite = bool(torch.isfinite(output).all()) and all(bool(torch.isfinite(g).all()) for g in grads.values())
    grad_error = _relative(torch.cat([grads[name].flatten() for name in reference_grads]),
                           torch.cat([g.flatten() for g in reference_grads.values()]))
    return _relative(output, reference), grad_error, finite

"""Distributed launches (torchrun, Slurm, MPI) of mmengine's Runner on machines without CUDA.

mmengine 0.10.7 assumes CUDA in two places of a distributed run:

- ``mmengine.dist.init_dist`` calls ``torch.cuda.set_device(local_rank)`` for every launcher, which
  raises ``AttributeError: module 'torch._C' has no attribute '_cuda_setDevice'`` on CPU-only torch;
- the Runner's default model wrapper passes ``device_ids=[LOCAL_RANK]`` to DistributedDataParallel,
  which DDP refuses for a module on the CPU.

:func:`setup_distributed` works around both before the Runner is built; with CUDA it does nothing,
so GPU runs go through mmengine unchanged (nccl by default, ``env_cfg.dist_cfg`` as configured).
"""
import contextlib

import torch
from mmengine.config import Config
from mmengine.dist import init_dist, is_distributed

LAUNCHERS = ('pytorch', 'slurm', 'mpi')


def cpu_backend(requested: str = 'nccl') -> str:
    """The process-group backend for a CPU run: ``requested``, except nccl (CUDA only), which becomes gloo."""
    return 'gloo' if requested == 'nccl' else requested


def cpu_model_wrapper_cfg(cfg: Config) -> dict:
    """mmengine's default DDP wrapper for ``cfg`` (Runner.wrap_model), with ``device_ids=None`` for CPU."""
    return dict(type='MMDistributedDataParallel', device_ids=None, broadcast_buffers=False,
                find_unused_parameters=cfg.get('find_unused_parameters', False))


@contextlib.contextmanager
def _cuda_set_device_skipped():
    """Make ``torch.cuda.set_device`` a no-op inside the block (mmengine's init_dist calls it)."""
    set_device = torch.cuda.set_device
    torch.cuda.set_device = lambda device: None
    try:
        yield
    finally:
        torch.cuda.set_device = set_device


def setup_distributed(cfg: Config) -> None:
    """Prepare ``cfg.launcher``'s distributed run of ``Runner.from_cfg(cfg)`` when CUDA is unavailable.

    Initialises the default process group with mmengine's own ``init_dist`` (same environment variables
    for torchrun, Slurm and MPI, and ``env_cfg.dist_cfg`` options such as ``timeout``), on gloo unless
    ``dist_cfg.backend`` names another CPU backend; the Runner then finds the group initialised and does
    not initialise it again. Sets ``cfg.model_wrapper_cfg`` to mmengine's default DDP wrapper with
    ``device_ids=None`` unless the config has its own wrapper.

    Does nothing without a launcher (``cfg.launcher`` 'none'), or when CUDA is available.
    """
    launcher = cfg.get('launcher', 'none')
    if launcher not in ('none', *LAUNCHERS):
        raise ValueError(f"launcher={launcher!r}: expected 'none' or one of {LAUNCHERS}")
    if launcher == 'none' or torch.cuda.is_available():
        return
    if not is_distributed():
        dist_cfg = dict(cfg.get('env_cfg', {}).get('dist_cfg', {}))
        dist_cfg['backend'] = cpu_backend(dist_cfg.get('backend', 'nccl'))
        with _cuda_set_device_skipped():
            init_dist(launcher, **dist_cfg)
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = cpu_model_wrapper_cfg(cfg)

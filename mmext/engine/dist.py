"""Distributed launches (torchrun, Slurm, MPI) of mmengine's Runner on machines without CUDA.

mmengine 0.10.7 assumes CUDA in two places of a distributed run:

- ``mmengine.dist.init_dist`` calls ``torch.cuda.set_device(local_rank)`` for every launcher, which
  raises ``AttributeError: module 'torch._C' has no attribute '_cuda_setDevice'`` on CPU-only torch;
- the Runner's default model wrapper passes ``device_ids=[LOCAL_RANK]`` to DistributedDataParallel,
  which DDP refuses for a module on the CPU.

:func:`setup_distributed` works around both before the Runner is built; with CUDA it does nothing,
so GPU runs go through mmengine unchanged (nccl by default, ``env_cfg.dist_cfg`` as configured).
:func:`teardown_distributed` ends a run that finished on every rank, so that it also exits cleanly.
"""
import contextlib
import time

import torch
import torch.distributed as torch_dist
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


def teardown_distributed(drain_seconds: float = 0.2) -> None:
    """End a distributed run that finished on every rank: a barrier, a pause, ``destroy_process_group()``.

    Without it, a gloo run aborts now and then *after* it finished (``terminate called without an active
    exception``, SIGABRT, so torchrun reports the run failed). Two core dumps showed why: gloo's worker
    thread releases a collective's work object after ``wait()`` returned in Python, and dropping the
    work's Python-created tensors (the validation metrics mmengine broadcasts; a barrier keeps the works
    before it alive too) takes the GIL. If the main thread is finalizing the interpreter by then, the
    worker thread is torn down inside a C++ destructor (pytorch/pytorch#190489). The barrier makes every
    rank finish its collectives; the pause (``time.sleep`` releases the GIL) lets the worker threads
    release their works, which takes them microseconds once scheduled; then the process group is
    destroyed. It narrows the race rather than closing it: torch gives no way to wait for gloo's
    worker threads while a DDP model still holds the group, and only the group's destructor joins them.

    Call it only once every rank returned normally: a barrier with a failed rank would wait until the
    timeout. Does nothing when no process group is initialised.
    """
    if not (torch_dist.is_available() and torch_dist.is_initialized()):
        return
    torch_dist.barrier()
    time.sleep(drain_seconds)
    torch_dist.destroy_process_group()

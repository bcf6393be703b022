"""mmext.engine.dist without starting processes: the backend and wrapper choices of CPU runs, and the
cases where setup_distributed must leave the config and torch.distributed alone."""
import pytest
import torch.distributed as torch_dist
from mmengine.config import Config

from mmext.engine.dist import cpu_backend, cpu_model_wrapper_cfg, setup_distributed


@pytest.mark.parametrize('requested, used', [('nccl', 'gloo'), ('gloo', 'gloo'), ('mpi', 'mpi')])
def test_cpu_backend_replaces_only_nccl(requested, used):
    assert cpu_backend(requested) == used


def test_cpu_wrapper_is_mmengines_default_without_device_ids():
    wrapper = cpu_model_wrapper_cfg(Config(dict(find_unused_parameters=True)))
    assert wrapper == dict(type='MMDistributedDataParallel', device_ids=None, broadcast_buffers=False,
                           find_unused_parameters=True)


def test_no_launcher_changes_nothing():
    cfg = Config(dict(launcher='none'))
    setup_distributed(cfg)
    assert 'model_wrapper_cfg' not in cfg and not torch_dist.is_initialized()


def test_unknown_launcher_is_refused_by_name():
    with pytest.raises(ValueError, match="launcher='srun'"):
        setup_distributed(Config(dict(launcher='srun')))

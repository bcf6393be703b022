"""mmext.engine.dist without starting processes: the backend and wrapper choices of CPU runs, the
cases where setup_distributed must leave the config and torch.distributed alone, and teardown_distributed
on a one-process group. The 2-process runs, and the exits they must survive, are tests/test_distributed."""
import pytest
import torch
import torch.distributed as torch_dist
from mmengine.config import Config

from mmext.engine.dist import cpu_backend, cpu_model_wrapper_cfg, setup_distributed, teardown_distributed


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


def test_teardown_destroys_the_group_after_its_collectives(tmp_path):
    teardown_distributed()  # no group: nothing to do
    torch_dist.init_process_group('gloo', init_method=f'file://{tmp_path / "store"}', rank=0, world_size=1)
    try:
        metrics = [torch.tensor([1.0])]
        torch_dist.broadcast_object_list(metrics)  # the kind of collective a run ends with
        teardown_distributed()
        assert not torch_dist.is_initialized()
    finally:
        if torch_dist.is_initialized():
            torch_dist.destroy_process_group()

"""MixedPrecisionOptimWrapper: bf16 autocast on CPU, refusals, state, and --amp through the tools."""
import copy

import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmengine.testing import RunnerTestCase

import mmext  # noqa: F401
from mmext.engine.optim import mixed_precision
from mmext.engine.optim.mixed_precision import MixedPrecisionOptimWrapper, cpu_bf16_flags

HAS_BF16 = bool(cpu_bf16_flags())


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / 'cpuinfo'
    cpuinfo.write_text('processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16 amx_tile\n\n'
                       'processor\t: 1\nflags\t\t: fpu sse avx512f avx512_bf16 amx_tile\n')
    assert cpu_bf16_flags(str(cpuinfo)) == ['avx512_bf16']
    cpuinfo.write_text('Features\t: fp asimd bf16 i8mm\n')  # Arm
    assert cpu_bf16_flags(str(cpuinfo)) == ['bf16']
    assert cpu_bf16_flags(str(tmp_path / 'missing')) == []


def _wrapper(**kwargs):
    model = torch.nn.Linear(4, 3)
    return model, build_optim_wrapper(model, dict(type='MixedPrecisionOptimWrapper', device='cpu',
                                                  optimizer=dict(type='SGD', lr=0.1), **kwargs))


def test_cpu_without_bf16_is_refused_naming_the_flags(monkeypatch):
    monkeypatch.setattr(mixed_precision, 'cpu_bf16_flags', lambda: [])
    with pytest.raises(RuntimeError, match='no bf16 units.*amx_bf16, avx512_bf16, bf16'):
        _wrapper()


def test_fp16_on_cpu_is_refused():
    with pytest.raises(ValueError, match='trains in bfloat16'):
        _wrapper(dtype='float16')


@pytest.mark.skipif(not HAS_BF16, reason='this CPU has no bf16 units (the refusal is tested above)')
def test_cpu_step_runs_in_bf16_and_updates_fp32_weights():
    model, wrapper = _wrapper(clip_grad=dict(max_norm=1e9))
    x = torch.randn(8, 4)
    with wrapper.optim_context(model):
        out = model(x)
    assert out.dtype == torch.bfloat16 and wrapper.loss_scaler is None
    loss = out.float().square().mean()
    before = model.weight.detach().clone()
    wrapper.update_params(loss)
    assert model.weight.dtype == torch.float32 and not torch.equal(model.weight, before)
    # The step is the fp32 gradient of the bf16 forward: plain SGD, lr 0.1, no scaling.
    expected_grad = (2 / out.numel()) * out.float().t() @ x.bfloat16().float()
    torch.testing.assert_close(before - model.weight.detach(), 0.1 * expected_grad, rtol=2e-2, atol=1e-3)
    state = wrapper.state_dict()
    assert 'loss_scaler' not in state
    wrapper.load_state_dict({**state, 'loss_scaler': {'scale': 65536.0}})  # a GPU run's checkpoint


@pytest.mark.skipif(not HAS_BF16, reason='this CPU has no bf16 units (the refusal is tested above)')
def test_toy_runner_trains_saves_and_resumes_under_bf16():
    case = RunnerTestCase()
    case.setUp()
    try:
        cfg = copy.deepcopy(case.iter_based_cfg)
        cfg.optim_wrapper = dict(type='MixedPrecisionOptimWrapper', optimizer=dict(type='SGD', lr=0.01))
        cfg.train_cfg = dict(by_epoch=False, max_iters=2, val_interval=2)
        case.build_runner(cfg).train()
        cfg.train_cfg = dict(by_epoch=False, max_iters=4, val_interval=2)
        cfg.experiment_name = 'resumed'
        cfg.update(resume=True, load_from=f'{cfg.work_dir}/iter_2.pth')
        runner = case.build_runner(cfg)
        runner.train()
        assert runner.iter == 4 and isinstance(runner.optim_wrapper, MixedPrecisionOptimWrapper)
    finally:
        case.tearDown()

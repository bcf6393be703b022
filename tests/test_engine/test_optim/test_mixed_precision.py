"""MixedPrecisionOptimWrapper: CpuBf16OptimWrapper on CPU (bf16 autocast, refusals, state), mmengine's
AmpOptimWrapper on CUDA, and the config changes of --amp / --fp32."""
import copy

import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmengine.testing import RunnerTestCase

import mmext  # noqa: F401
from mmext.engine.optim import mixed_precision
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmext.engine.optim.mixed_precision import (CpuBf16OptimWrapper, cpu_bf16_flags, optim_wrapper_in,
                                                wrapper_precision)

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
    assert out.dtype == torch.bfloat16 and type(wrapper) is CpuBf16OptimWrapper
    assert wrapper_precision(wrapper) == 'bf16'
    assert wrapper_precision(OptimWrapper(wrapper.optimizer)) == 'fp32'
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
        assert runner.iter == 4 and isinstance(runner.optim_wrapper, CpuBf16OptimWrapper)
    finally:
        case.tearDown()


@pytest.mark.skipif(not torch.cuda.is_available(), reason='no CUDA device')
@pytest.mark.parametrize('dtype, precision', [(None, 'fp16'), ('bfloat16', 'bf16')])
def test_cuda_is_mmengine_amp_optim_wrapper_with_dynamic_loss_scaling(dtype, precision):
    model = torch.nn.Linear(4, 3).cuda()
    wrapper = build_optim_wrapper(model, dict(type='MixedPrecisionOptimWrapper', dtype=dtype,
                                              unsupported='fp32', optimizer=dict(type='SGD', lr=0.1)))
    assert type(wrapper) is AmpOptimWrapper and wrapper_precision(wrapper) == precision
    assert isinstance(wrapper.loss_scaler, torch.amp.GradScaler)
    with wrapper.optim_context(model):
        out = model(torch.randn(8, 4, device='cuda'))
    assert out.dtype == {'fp16': torch.float16, 'bf16': torch.bfloat16}[precision]
    before = model.weight.detach().clone()
    wrapper.update_params(out.float().square().mean())
    assert model.weight.dtype == torch.float32 and not torch.equal(model.weight, before)
    state = wrapper.state_dict()
    assert state['loss_scaler']['scale'] == 65536.0  # GradScaler's initial scale: finite gradients keep it
    wrapper.load_state_dict(state)


def test_recipe_without_bf16_trains_in_fp32_and_says_so(monkeypatch):
    # unsupported='fp32', the embedded recipes' setting: fp32 on a CPU without bf16 units, logged.
    monkeypatch.setattr(mixed_precision, 'cpu_bf16_flags', lambda: [])
    messages = []
    monkeypatch.setattr(mixed_precision, 'print_log', lambda message, **kwargs: messages.append(message))
    model, wrapper = _wrapper(unsupported='fp32')
    assert type(wrapper) is CpuBf16OptimWrapper and wrapper.precision == 'fp32'
    assert any('no bf16 units' in m and 'training in fp32' in m for m in messages)
    with wrapper.optim_context(model):
        out = model(torch.randn(2, 4))
    assert out.dtype == torch.float32
    wrapper.update_params(out.square().mean())
    with pytest.raises(ValueError, match="unsupported='fp16'"):
        _wrapper(unsupported='fp16')


@pytest.mark.skipif(not HAS_BF16, reason='this CPU has no bf16 units')
def test_recipe_with_bf16_units_trains_in_bf16():
    model, wrapper = _wrapper(unsupported='fp32')
    assert wrapper.precision == 'bf16'
    with wrapper.optim_context(model):
        assert model(torch.randn(2, 4)).dtype == torch.bfloat16


def test_precision_changes_only_the_wrapper_type_and_its_keys():
    optimizer = dict(type='SGD', lr=0.1)
    plain = dict(type='OptimWrapper', optimizer=optimizer, clip_grad=dict(max_norm=1.0))
    assert optim_wrapper_in(plain, 'mixed') == dict(plain, type='MixedPrecisionOptimWrapper',
                                                     loss_scale='dynamic')
    assert optim_wrapper_in(plain, 'fp32') == plain
    recipe = dict(type='MixedPrecisionOptimWrapper', unsupported='fp32', loss_scale='dynamic',
                  optimizer=optimizer)
    assert optim_wrapper_in(recipe, 'mixed')['unsupported'] == 'error'  # asked for: no silent fp32
    assert recipe['unsupported'] == 'fp32'  # a copy is returned
    assert optim_wrapper_in(recipe, 'fp32') == dict(type='OptimWrapper', optimizer=optimizer)
    amp = dict(type='AmpOptimWrapper', loss_scale=512.0, optimizer=optimizer)
    assert optim_wrapper_in(amp, 'mixed') == amp
    with pytest.raises(ValueError, match='needs optim_wrapper.type=OptimWrapper, got ApexOptimWrapper'):
        optim_wrapper_in(dict(type='ApexOptimWrapper', optimizer=optimizer), 'mixed')
    with pytest.raises(ValueError, match="'fp32' or 'mixed', got 'bf16'"):
        optim_wrapper_in(plain, 'bf16')

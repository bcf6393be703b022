"""ChannelsLastHook: the model's 4-D weights and every preprocessed batch in channels-last, the same
losses and gradients as the default layout (up to the order of float sums), state_dict unchanged."""
import copy
from types import SimpleNamespace

import pytest
import torch

from mmext.engine.channels_last_hook import ChannelsLastHook
from mmext.engine.optim import cpu_bf16_flags
from mmext.testing import seg_samples_from_labels


def test_channels_last_model_gives_the_default_layouts_losses(tiny_model):
    default, _ = tiny_model('ocr_tiny')
    model = copy.deepcopy(default)
    hook = ChannelsLastHook()
    hook.before_run(SimpleNamespace(model=model))
    hook.before_run(SimpleNamespace(model=model))  # a second run adds no second input hook
    assert len(model.data_preprocessor._forward_hooks) == 1
    conv = model.backbone.stem[0].weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    assert {k: v.shape for k, v in model.state_dict().items()} == \
        {k: v.shape for k, v in default.state_dict().items()}
    generator = torch.Generator().manual_seed(0)
    samples = seg_samples_from_labels(torch.randint(0, 6, (2, 64, 64), generator=generator))
    for sample in samples:
        sample.set_metainfo(dict(img_shape=(64, 64), ori_shape=(64, 64), pad_shape=(64, 64)))
    batch = dict(inputs=[torch.randint(0, 256, (3, 64, 64), generator=generator, dtype=torch.uint8)
                         for _ in samples], data_samples=samples)
    data = model.data_preprocessor(copy.deepcopy(batch), True)
    assert data['inputs'].is_contiguous(memory_format=torch.channels_last)
    torch.manual_seed(0)
    want = default.loss(**default.data_preprocessor(copy.deepcopy(batch), True))
    torch.manual_seed(0)
    got = model.loss(**data)
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=1e-4, atol=1e-5)
    hook.after_run(SimpleNamespace(model=model))
    assert not model.data_preprocessor._forward_hooks


HOOKS = [dict(type='ChannelsLastHook', precisions=('bf16', ))]


@pytest.mark.parametrize('wrapper, channels_last', [
    (dict(type='OptimWrapper'), False),
    (dict(type='MixedPrecisionOptimWrapper', unsupported='fp32'), bool(cpu_bf16_flags())),
])
def test_bf16_runs_train_in_channels_last_and_fp32_ones_as_they_were(tiny_runner, wrapper, channels_last):
    # ChannelsLastHook(precisions=('bf16',)); bf16 only on a CPU with bf16 units
    runner = tiny_runner('ocr_tiny', {'train_cfg.max_iters': 1, 'train_cfg.val_interval': 10,
                                      'custom_hooks': HOOKS,
                                      'optim_wrapper': dict(wrapper, _delete_=True,
                                                            optimizer=dict(type='SGD', lr=0.01))})
    runner.train()
    weight = runner.model.backbone.stem[0].weight
    assert weight.is_contiguous(memory_format=torch.channels_last) == channels_last
    assert weight.is_contiguous() != channels_last


def test_a_test_run_is_left_alone(tiny_runner):
    runner = tiny_runner('ocr_tiny', {'custom_hooks': HOOKS})
    hook = next(h for h in runner.hooks if isinstance(h, ChannelsLastHook))
    assert hook.precisions == ('bf16', ) and not hook._applies(runner)  # no optim wrapper built

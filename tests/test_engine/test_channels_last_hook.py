"""ChannelsLastHook: the model's 4-D weights and every preprocessed batch in channels-last, the same
losses and gradients as the default layout (up to the order of float sums), state_dict unchanged."""
import copy
from types import SimpleNamespace

import torch

from mmext.engine.channels_last_hook import ChannelsLastHook
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

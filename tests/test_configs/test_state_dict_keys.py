"""Checkpoints saved before the package split (mmext.seg, mmext.det) still load: every config's model has the
same state_dict keys and shapes as at commit 1675265, the last one before it. The reference is the
count of entries and a digest of the sorted ``key:shape`` lines, recorded by building each model there."""
import hashlib

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmext.testing.tools import REPO_ROOT

# config: (entries, the first 16 hex digits of sha256 over the sorted 'key:(shape)' lines)
RECORDED_AT_1675265 = {
    'configs/dlde/dlde_retinanet_r50_fpn_1x_coco.py': (358, 'c87860028bbef107'),
    'configs/dlde_retinanet_r50.py': (358, '5f5efb60cbe43e2e'),
    'configs/dlde_retinanet_r50_e256.py': (358, 'bf49c401b3fcee11'),
    'configs/net2vec_r50.py': (332, 'a8628b7180290fc5'),
    'configs/ocr_r50.py': (388, 'e1d2270072c18bb5'),
    'configs/ocrnet/ocrnet_hr18_4xb4-80k_ade20k-512x512.py': (1888, '6e93b7e3dfc1cba5'),
    'configs/ocrnet/ocrnet_r50-d8_4xb2-40k_cityscapes-512x1024.py': (388, '147498f7d2907363'),
    'configs/point_rend/pointrend_r50_4xb2-80k_cityscapes-512x1024.py': (398, 'aed22b896fd89f73'),
    'configs/pointrend_r50.py': (398, 'da3eb31fcf59bf5d'),
    'configs/retinanet_r50.py': (354, '3532067795fc9559'),
}


def state_dict_digest(config: str):
    import mmext  # noqa: F401  (registers both hosts' plugins)
    cfg = Config.fromfile(REPO_ROOT / config)
    if cfg.default_scope == 'mmseg':
        from mmseg.registry import MODELS
    else:
        from mmdet.registry import MODELS
    with DefaultScope.overwrite_default_scope(cfg.default_scope), torch.device('meta'):
        state = MODELS.build(cfg.model).state_dict()
    text = '\n'.join(f'{key}:{tuple(value.shape)}' for key, value in sorted(state.items()))
    return len(state), hashlib.sha256(text.encode()).hexdigest()[:16]


@pytest.mark.parametrize('config', sorted(RECORDED_AT_1675265))
def test_state_dict_keys_and_shapes_are_those_of_earlier_checkpoints(config):
    assert state_dict_digest(config) == RECORDED_AT_1675265[config]

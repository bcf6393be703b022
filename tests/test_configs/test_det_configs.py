"""Detection configs: a stock mmdet config with custom_imports builds the DLDE head; the full recipe
mirrors mmdet's RetinaNet and runs one full-size inference with random weights; the embedded
configs differ only in the head; the equal-cost RetinaNet configs only in the schedule's length."""
from pathlib import Path

import mmdet
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmext.det.heads import DLDEHead

ROOT = Path(__file__).resolve().parents[2]
MMDET_CONFIGS = Path(mmdet.__file__).parent / '.mim/configs'
DLDE_ARGS = ('embedding_size', 'means_update', 'means_lr')


def _build(cfg):
    cfg.model.backbone.init_cfg = None  # nothing is downloaded
    with DefaultScope.overwrite_default_scope('mmdet'):
        return MODELS.build(cfg.model).eval()


def _predict(model, size):
    sample = DetDataSample(metainfo=dict(img_shape=size, ori_shape=size, pad_shape=size,
                                         scale_factor=(1.0, 1.0)))
    with torch.no_grad():
        (result,) = model.predict(torch.rand(1, 3, *size), [sample])
    return result.pred_instances


def test_stock_mmdet_config_with_custom_imports_builds_dlde_head(tmp_path):
    config = tmp_path / 'stock.py'
    config.write_text(
        "_base_ = 'mmdet::retinanet/retinanet_r18_fpn_1x_coco.py'\n"
        "custom_imports = dict(imports=['mmext'], allow_failed_imports=False)\n"
        "model = dict(bbox_head=dict(type='DLDEHead', embedding_size=64), test_cfg=dict(score_thr=0.0))\n")
    model = _build(Config.fromfile(config))
    assert isinstance(model.bbox_head, DLDEHead) and model.bbox_head.num_classes == 80
    instances = _predict(model, (128, 160))
    # Zero means: every score is sigmoid(-3.5) / sigmoid(3.5), below mmdet's default score_thr 0.05.
    assert len(instances.scores) and torch.allclose(instances.scores, torch.tensor(0.030197), atol=1e-5)


def test_full_recipe_mirrors_mmdet_retinanet_and_runs_at_full_size(unscoped):
    ours = Config.fromfile(ROOT / 'configs/dlde/dlde_retinanet_r50_fpn_1x_coco.py')
    theirs = Config.fromfile(MMDET_CONFIGS / 'retinanet/retinanet_r50_fpn_1x_coco.py')
    head = unscoped(ours.model.bbox_head.to_dict())
    assert head.pop('type') == 'DLDEHead'
    # DLDE's own arguments are left to DLDEHead's signature, their one home: torchsight's 256, 'batch', 0.1
    assert not set(DLDE_ARGS) & set(head)
    import inspect

    from mmext.det.heads import DLDEHead
    defaults = {k: inspect.signature(DLDEHead).parameters[k].default for k in DLDE_ARGS}
    assert defaults == dict(embedding_size=256, means_update='batch', means_lr=0.1)
    reference = unscoped(theirs.model.bbox_head.to_dict())
    reference.pop('type')
    assert head == reference
    for key in ('backbone', 'neck', 'train_cfg', 'test_cfg', 'data_preprocessor'):
        assert unscoped(ours.model[key]) == unscoped(theirs.model[key]), key
    for key in ('train_dataloader', 'optim_wrapper', 'param_scheduler', 'train_cfg', 'tta_model'):
        assert unscoped(ours[key]) == unscoped(theirs[key]), key
    model = _build(ours)
    instances = _predict(model, (800, 1344))  # COCO's test scale, padded to 32
    assert len(instances.scores) <= 100 and torch.isfinite(instances.bboxes).all()


def test_embedded_dlde_config_changes_only_the_head():
    ours = Config.fromfile(ROOT / 'configs/dlde_retinanet_r50.py')
    baseline = Config.fromfile(ROOT / 'configs/retinanet_r50.py')
    head = ours.model.bbox_head.to_dict()
    assert head.pop('type') == 'DLDEHead' and baseline.model.bbox_head.type == 'RetinaHead'
    for key in DLDE_ARGS:
        head.pop(key)
    reference = baseline.model.bbox_head.to_dict()
    reference.pop('type')
    assert head == reference
    ours.model.pop('bbox_head'), baseline.model.pop('bbox_head')
    assert ours.to_dict() == baseline.to_dict()


def test_embedded_recipe_and_torchsight_reference_settings():
    recipe = Config.fromfile(ROOT / 'configs/dlde_retinanet_r50.py')
    reference = Config.fromfile(ROOT / 'configs/dlde_retinanet_r50_e256.py')
    assert {k: recipe.model.bbox_head[k] for k in DLDE_ARGS} == dict(embedding_size=32, means_update='batch',
                                                                    means_lr=0.01)
    assert (reference.model.bbox_head.embedding_size, reference.model.bbox_head.means_lr) == (256, 0.1)
    reference.model.bbox_head.update(embedding_size=32, means_lr=0.01)
    assert reference.to_dict() == recipe.to_dict()  # only the two settings differ


@pytest.mark.parametrize('iters', [1248, 1488, 1764])
def test_equal_cost_retinanet_stretches_the_whole_schedule(iters):
    """retinanet_r50_{iters}it.py: RetinaNet given DLDE's wall-clock, warm-up and cosine stretched by the
    same factor; the model, data and optimizer are retinanet_r50.py's."""
    base = Config.fromfile(ROOT / 'configs/retinanet_r50.py').to_dict()
    stretched = Config.fromfile(ROOT / f'configs/retinanet_r50_{iters}it.py').to_dict()
    warmup = round(100 * iters / 1200)
    assert stretched.pop('param_scheduler') == [
        dict(type='LinearLR', start_factor=0.1, begin=0, end=warmup, by_epoch=False),
        dict(type='CosineAnnealingLR', eta_min=1e-6, begin=warmup, end=iters, T_max=iters - warmup,
             by_epoch=False)]
    assert stretched['train_cfg'] == dict(base['train_cfg'], max_iters=iters, val_interval=iters)
    assert stretched['default_hooks']['checkpoint']['interval'] == iters
    for key in ('param_scheduler', 'train_cfg', 'default_hooks', 'max_iters'):
        base.pop(key)
        stretched.pop(key, None)
    assert stretched == base

"""A config that names something mmext cannot build (an unknown registry name, a misspelt or missing
argument, a plugin that cannot be imported) fails with that name in the error (docs/robustness.md)."""
from pathlib import Path

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmseg.registry import MODELS as SEG_MODELS

import mmext  # noqa: F401  (registers the plugins, as custom_imports does)

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize('config, options, error, match', [
    ('ocr_tiny', {'model.decode_head.1.type': 'NoSuchHead'}, KeyError,
     'NoSuchHead is not in the mmseg::model registry'),
    ('ocr_tiny', {'model.decode_head.1.loss_decode': dict(type='NoSuchLoss')}, KeyError,
     'NoSuchLoss is not in the mmseg::model registry'),
    ('pointrend_tiny', {'model.neck.type': 'NoSuchNeck'}, KeyError, 'NoSuchNeck is not in the mmseg::model'),
    ('ocr_tiny', {'custom_hooks': [dict(type='NoSuchHook')]}, KeyError,
     'NoSuchHook is not in the mmseg::hook registry'),
    ('dlde_tiny', {'model.bbox_head.type': 'NoSuchHead'}, KeyError,
     'NoSuchHead is not in the mmdet::model registry'),
    ('dlde_tiny', {'custom_hooks': [dict(type='NoSuchHook')]}, KeyError,
     'NoSuchHook is not in the mmdet::hook registry'),
    ('ocr_tiny', {'model.decode_head.1.ocr_chanels': 8}, TypeError,
     "unexpected keyword argument 'ocr_chanels'"),
], ids=['seg-head', 'seg-loss', 'seg-neck', 'seg-hook', 'det-head', 'det-hook', 'misspelt-argument'])
def test_unknown_name_in_a_config_is_named(tiny_runner, config, options, error, match):
    with pytest.raises(error, match=match):
        tiny_runner(config, options)


@pytest.mark.parametrize('config, options, run, match', [
    ('ocr_tiny', {'train_dataloader.dataset.type': 'NoSuchDataset'}, 'train',
     'NoSuchDataset is not in the mmseg::dataset registry'),
    ('ocr_tiny', {'val_evaluator': [dict(type='NoSuchMetric')]}, 'val',
     'NoSuchMetric is not in the mmseg::metric registry'),
    ('dlde_tiny', {'val_dataloader.dataset.pipeline': [dict(type='NoSuchTransform')]}, 'val',
     'NoSuchTransform is not in the mmdet::transform registry'),
], ids=['seg-dataset', 'seg-metric', 'det-transform'])
def test_unknown_name_built_lazily_is_named(tiny_runner, config, options, run, match):
    runner = tiny_runner(config, options)
    with pytest.raises(KeyError, match=match):
        getattr(runner, run)()


def test_missing_required_argument_is_named():
    cfg = Config.fromfile(ROOT / 'tests/configs/ocr_tiny.py')
    del cfg.model.decode_head[1]['ocr_channels']
    with DefaultScope.overwrite_default_scope('mmseg'), \
            pytest.raises(TypeError, match="missing 1 required positional argument: 'ocr_channels'"):
        SEG_MODELS.build(cfg.model)


def test_missing_custom_import_is_named(tmp_path):
    config = tmp_path / 'bad_import.py'
    config.write_text(f"_base_ = '{ROOT / 'configs/ocr_r50.py'}'\n"
                      "custom_imports = dict(imports=['mmext', 'mmext_no_such_plugin'], "
                      'allow_failed_imports=False)\n')
    with pytest.raises(ImportError, match='mmext_no_such_plugin') as excinfo:
        Config.fromfile(config)
    chain, error = [], excinfo.value
    while error is not None:  # mmengine re-raises inside ``except``: the real error is the context
        chain.append(str(error))
        error = error.__cause__ or error.__context__
    assert "No module named 'mmext_no_such_plugin'" in chain

"""Fixtures shared by the whole suite."""
import uuid
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(params=['cpu', pytest.param('cuda', marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason='no CUDA device'))])
def device(request):
    """A test taking ``device`` runs on the CPU and, where a CUDA device is present, on it too (the
    mixed-precision tests: CPU autocast is bf16/fp16 without a loss scaler, CUDA autocast is cuDNN's and
    cuBLAS's)."""
    return torch.device(request.param)


@pytest.fixture(scope='session')
def data_root(tmp_path_factory):
    """Where the tiny test configs' synthetic dataset (8 train / 4 val images of 64 px) is generated on
    first use; one folder for the session, never the user's data/."""
    return tmp_path_factory.mktemp('synthetic_shapes')


@pytest.fixture
def tiny_runner(data_root, tmp_path):
    """``tiny_runner(config, options=None, runtime=None)``: a Runner of the tests/configs tiny config
    ``config`` on ``data_root``, working in ``tmp_path``, with ``options`` merged in.

    ``runtime`` replaces the config's custom_hooks by those of a configs/_base_ runtime, so that the
    hooks under test are exactly the ones every mmext config gets.
    """
    def build(config, options=None, runtime=None):
        from mmext.testing import tiny_config
        cfg = tiny_config(config, data_root, tmp_path,
                          dict(options or {}, experiment_name=f'{config}_{uuid.uuid4().hex}'), runtime)
        return Runner.from_cfg(cfg)

    return build


@pytest.fixture
def tiny_model():
    """``tiny_model(name)``: the model of the tests/configs tiny config ``name``, seeded, built under its
    library's scope; returns ``(model, scope)``."""
    # Imported on use: collecting the suite should not pay for importing mmdet and mmseg.
    import mmext  # noqa: F401  (registers the plugins, as custom_imports does)
    from mmdet.registry import MODELS as DET_MODELS
    from mmseg.registry import MODELS as SEG_MODELS

    def build(name):
        cfg = Config.fromfile(ROOT / 'tests/configs' / f'{name}.py')
        scope, registry = ('mmdet', DET_MODELS) if name.startswith('dlde') else ('mmseg', SEG_MODELS)
        torch.manual_seed(0)
        with DefaultScope.overwrite_default_scope(scope):
            return registry.build(cfg.model), scope

    return build

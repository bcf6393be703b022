"""Export errors: an op without an ONNX translation is named with the module that calls it."""
import pytest
import torch
import torch.nn as nn

pytest.importorskip('onnxscript')

from mmext.deploy import DeployError  # noqa: E402
from mmext.deploy.export import export_graph  # noqa: E402


class ChannelKth(nn.Module):
    def forward(self, x):
        return x.kthvalue(2, dim=1).values  # aten.kthvalue has no ONNX translation in torch 2.13


class Toy(nn.Module):
    output_names = ('out',)

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.pool = ChannelKth()

    def forward(self, images):
        return self.pool(self.conv(images))


def test_untranslatable_op_names_module_and_op(tmp_path):
    with pytest.raises(DeployError, match=r'pool \(ChannelKth\): aten\.kthvalue'):
        export_graph(Toy(), torch.rand(1, 3, 8, 8), tmp_path / 'toy.onnx', dynamic=False, opset=18,
                     output_names=Toy.output_names)


@pytest.mark.parametrize('config, size', [
    ('configs/ocr_r50.py', (128, 128)),                                 # data_preprocessor.size
    ('configs/dlde_retinanet_r50.py', (128, 128)),                      # the test Resize scale
    ('tests/configs/dlde_tiny.py', (64, 64)),                           # the tiny overlay's Resize
    ('configs/dlde/dlde_retinanet_r50_fpn_1x_coco.py', (800, 1333)),    # the test Resize scale (w, h)
    ('configs/ocrnet/ocrnet_r50-d8_4xb2-40k_cityscapes-512x1024.py', (512, 1024)),
])
def test_default_export_size_is_the_configs_test_size(config, size):
    from pathlib import Path

    from mmengine.config import Config

    from mmext.deploy.export import test_input_size
    cfg = Config.fromfile(Path(__file__).resolve().parents[2] / config)
    assert test_input_size(cfg) == size


def test_a_config_without_a_test_size_asks_for_shape():
    from mmengine.config import Config

    from mmext.deploy.export import test_input_size
    cfg = Config(dict(default_scope='mmdet', model=dict(),
                      test_dataloader=dict(dataset=dict(type='CocoDataset', pipeline=[]))))
    with pytest.raises(DeployError, match='pass --shape H W'):
        test_input_size(cfg)


def test_export_leaves_the_global_random_state_alone(tmp_path, monkeypatch):
    """The example input comes from a generator of the exporter's own: the same every time, and the
    caller's ``torch.manual_seed`` stream goes on as if no export had happened."""
    from pathlib import Path

    from mmengine.config import Config

    import mmext.deploy.export as export
    from mmext.analysis import build_model
    cfg = Config.fromfile(Path(__file__).resolve().parents[2] / 'tests/configs/ocr_tiny.py')
    examples = []
    monkeypatch.setattr(export, 'export_graph', lambda graph, example, *args: examples.append(example))
    monkeypatch.setattr(export, 'write_spec', lambda *args, **kwargs: None)
    model = build_model(cfg, seed=0)
    for _ in range(2):
        torch.manual_seed(123)
        export.export_model(model, cfg, tmp_path / 'out')
        after_export = torch.rand(3)
        torch.manual_seed(123)
        assert torch.equal(after_export, torch.rand(3))
    assert len(examples) == 2 and torch.equal(examples[0], examples[1])


@pytest.mark.parametrize('config, refused', [
    ('fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py', 'FCOS with FCOSHead (its loss_centerness)'),
    ('atss/atss_r50_fpn_1x_coco.py', 'ATSS with ATSSHead (its loss_centerness)'),
    ('faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py', 'FasterRCNN (rpn_head and roi_head)'),
])
def test_unsupported_stock_detectors_are_refused_by_name(config, refused):
    import os

    import mmdet
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    import mmext.det  # noqa: F401
    from mmext.deploy.graph import DetectorGraph
    cfg = Config.fromfile(os.path.join(os.path.dirname(mmdet.__file__), '.mim/configs', config))
    cfg.model.backbone.init_cfg = None
    with DefaultScope.overwrite_default_scope('mmdet'), torch.device('meta'):
        model = MODELS.build(cfg.model)
    with pytest.raises(DeployError) as error:
        DetectorGraph(model)
    assert str(error.value) == (f'{refused}: mmext.deploy exports one-stage detectors with an anchor head '
                                'that predicts class scores and box deltas (RetinaHead and its subclasses: '
                                'RetinaNet, DLDE)')

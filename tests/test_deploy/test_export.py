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

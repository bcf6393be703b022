"""FLOP counting: closed forms of a convolution and a matmul, and per-part counts of a cascade whose
parts are called through their methods directly."""
import torch
import torch.nn as nn

from mmext.analysis.flops import count_flops, flops_per_component


def test_flops_of_a_1x1_conv_and_a_matmul_are_the_closed_forms():
    conv = nn.Conv2d(3, 5, kernel_size=1)  # the bias adds nothing in torch's convention
    _, flops = count_flops(lambda: conv(torch.randn(2, 3, 7, 9)))
    assert flops == 2 * 2 * 3 * 5 * 7 * 9  # 2 * B * Cin * Cout * H * W
    _, flops = count_flops(lambda: torch.randn(4, 6) @ torch.randn(6, 8))
    assert flops == 2 * 4 * 6 * 8


class _Cascade(nn.Module):
    """Calls its second head's forward directly, as mmseg's CascadeEncoderDecoder does."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Conv2d(2, 4, 1)
        self.heads = nn.ModuleList([nn.Conv2d(4, 3, 1), nn.Linear(3, 5)])

    def forward(self, x):
        out = self.heads[0](self.backbone(x))
        return self.heads[1].forward(out.mean((2, 3))) + torch.randn(1, 5) @ torch.randn(5, 5)


def test_flops_per_component_counts_direct_method_calls_and_restores_the_methods():
    model = _Cascade()
    parts = {'backbone': model.backbone, 'heads.0': model.heads[0], 'heads.1': model.heads[1]}
    with flops_per_component(parts) as counts:
        _, total = count_flops(lambda: model(torch.randn(1, 2, 4, 4)))
    assert counts == {'backbone': 2 * 2 * 4 * 16, 'heads.0': 2 * 4 * 3 * 16, 'heads.1': 2 * 3 * 5}
    assert total == sum(counts.values()) + 2 * 5 * 5  # the matmul outside every part
    assert all('forward' not in vars(module) for module in parts.values())

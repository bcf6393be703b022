"""sum_loss_decode: the loss_decode loop of mmext's decode heads is mmseg's BaseDecodeHead's."""
import math

import pytest
import torch
from mmengine.structures import PixelData
from mmseg.models.decode_heads import FCNHead
from mmseg.structures import SegDataSample

from mmext.seg.heads.decode_loss import sum_loss_decode

LOSSES = [dict(type='CrossEntropyLoss', loss_weight=1.0), dict(type='CrossEntropyLoss', loss_weight=0.5),
          dict(type='DiceLoss', loss_weight=2.0)]


def test_same_named_terms_are_summed_as_mmseg_decode_heads_do():
    head = FCNHead(in_channels=4, channels=4, num_classes=3, num_convs=1, loss_decode=LOSSES)
    torch.manual_seed(0)
    logits, labels = torch.randn(2, 3, 5, 5), torch.randint(0, 3, (2, 5, 5))
    labels[:, 0] = 255
    samples = [SegDataSample(gt_sem_seg=PixelData(data=label[None])) for label in labels]
    ours = sum_loss_decode(head.loss_decode, logits, labels, weight=None, ignore_index=255)
    theirs = head.loss_by_feat(logits, samples)
    assert set(ours) == {'loss_ce', 'loss_dice'}
    for name, value in ours.items():
        assert torch.equal(value, theirs[name]), name
    ce = torch.nn.functional.cross_entropy(logits, labels, ignore_index=255, reduction='sum') / labels.numel()
    torch.testing.assert_close(ours['loss_ce'], 1.5 * ce)  # mmseg averages over all pixels by default


def test_one_loss_and_a_prefix():
    # Constant logits (0, 1, 0) and label 1 everywhere: CE = log(2 + e) - 1.
    head = FCNHead(in_channels=4, channels=4, num_classes=3, num_convs=1)
    logits = torch.tensor([0.0, 1.0, 0.0]).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    losses = sum_loss_decode(head.loss_decode, logits, torch.ones(1, 2, 2, dtype=torch.long), prefix='point')
    assert list(losses) == ['pointloss_ce']
    assert losses['pointloss_ce'].item() == pytest.approx(math.log(2 + math.e) - 1, rel=1e-6)


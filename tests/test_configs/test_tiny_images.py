"""Images smaller than the kernels and strides of a whole segmentor (the tiny OCR and PointRend test
configs): prediction keeps the image size with finite logits, and training gives finite losses
(docs/robustness.md)."""
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

SEG_CLASSES = 6  # background + 5 shapes: SyntheticShapesDataset


@pytest.mark.parametrize('config', ['ocr_tiny', 'pointrend_tiny'])
@pytest.mark.parametrize('size', [(1, 1), (3, 5), (17, 9)], ids=lambda s: f'{s[0]}x{s[1]}')
def test_seg_prediction_of_a_tiny_image(tiny_model, config, size):
    model, _ = tiny_model(config)
    sample = SegDataSample(metainfo=dict(img_shape=size, ori_shape=size, pad_shape=size))
    with torch.no_grad():
        (result,) = model.eval().predict(torch.rand(1, 3, *size), [sample])
    logits = result.seg_logits.data
    assert logits.shape == (SEG_CLASSES, *size) and torch.isfinite(logits).all()


@pytest.mark.parametrize('config', ['ocr_tiny', 'pointrend_tiny'])
def test_seg_training_on_1x1_images(tiny_model, config):
    model, _ = tiny_model(config)
    samples = [SegDataSample(metainfo=dict(img_shape=(1, 1), ori_shape=(1, 1), pad_shape=(1, 1)),
                             gt_sem_seg=PixelData(data=torch.tensor([[[c]]]))) for c in (1, 4)]
    losses = model.train().loss(torch.rand(2, 3, 1, 1), samples)
    assert all(torch.isfinite(v).all() for k, v in losses.items() if 'loss' in k)

"""Fake inputs: mmseg and mmdet data samples with random or given ground truth, raw batches of random images,
and random tensors of given shapes, for tests, FLOP counting and head-level benchmarks."""
from typing import List, Optional, Sequence, Tuple

import torch
from mmengine.config import Config


def seg_samples(shape: Tuple[int, int], batch: int, num_classes: Optional[int] = None,
                generator: Optional[torch.Generator] = None) -> list:
    """``batch`` mmseg ``SegDataSample``s of an (H, W) image, with uniform random labels in
    [0, num_classes) as ``gt_sem_seg`` when ``num_classes`` is given."""
    from mmseg.structures import SegDataSample
    from mmengine.structures import PixelData
    samples = []
    for _ in range(batch):
        sample = SegDataSample(metainfo=dict(img_shape=shape, ori_shape=shape, pad_shape=shape))
        if num_classes is not None:
            sample.gt_sem_seg = PixelData(data=torch.randint(num_classes, (1, *shape), generator=generator))
        samples.append(sample)
    return samples


def seg_samples_from_labels(labels: Sequence[torch.Tensor]) -> list:
    """mmseg ``SegDataSample``s whose ``gt_sem_seg`` are the given (H, W) label maps (an (N, H, W)
    tensor gives N samples)."""
    from mmseg.structures import SegDataSample
    from mmengine.structures import PixelData
    return [SegDataSample(gt_sem_seg=PixelData(data=label[None])) for label in labels]


def random_boxes(num: int, shape: Tuple[int, int],
                 generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """(num, 4) x1 y1 x2 y2 boxes inside an (H, W) image, each side 5 % to 50 % of the image's."""
    height, width = shape
    size = torch.rand(num, 2, generator=generator) * 0.45 + 0.05
    corner = torch.rand(num, 2, generator=generator) * (1 - size)
    scale = torch.tensor([width, height], dtype=torch.float32)
    return torch.cat([corner * scale, (corner + size) * scale], dim=1)


def det_samples(shape: Tuple[int, int], batch: int, num_classes: Optional[int] = None,
                boxes_per_image: int = 8, generator: Optional[torch.Generator] = None) -> list:
    """``batch`` mmdet ``DetDataSample``s of an (H, W) image (no padding, scale factor 1), with
    ``boxes_per_image`` random ground-truth boxes of random labels when ``num_classes`` is given."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    samples = []
    for _ in range(batch):
        sample = DetDataSample(metainfo=dict(img_shape=shape, ori_shape=shape, pad_shape=shape,
                                             batch_input_shape=shape, scale_factor=(1.0, 1.0)))
        if num_classes is not None:
            sample.gt_instances = InstanceData(
                bboxes=random_boxes(boxes_per_image, shape, generator),
                labels=torch.randint(num_classes, (boxes_per_image,), generator=generator))
        samples.append(sample)
    return samples


def dummy_batch(cfg: Config, shape: Tuple[int, int], batch: int = 1) -> dict:
    """A raw (not preprocessed) batch of random uint8-range images of an (H, W) shape, with the
    data samples of the config's host library, for FLOP counting and shape inference."""
    host = cfg.get('default_scope', 'mmseg')
    make = {'mmseg': seg_samples, 'mmdet': det_samples}
    if host not in make:
        raise ValueError(f"dummy_batch: default_scope={host!r}, expected 'mmseg' or 'mmdet'")
    return dict(inputs=[torch.randint(256, (3, *shape), dtype=torch.uint8) for _ in range(batch)],
                data_samples=make[host](tuple(shape), batch))


def random_like_shapes(shapes: Sequence[Tuple[int, ...]], device: str = 'cpu',
                       generator: Optional[torch.Generator] = None) -> List[torch.Tensor]:
    """Standard-normal fp32 tensors of the given shapes (on ``device``)."""
    return [torch.randn(s, generator=generator).to(device) for s in shapes]


def scene_image(size: Tuple[int, int], tile: int = 128, seed: int = 0):
    """An (H, W, 3) uint8 BGR image tiled with the embedded dataset's scenes of ``tile`` pixels, cropped
    to ``size``: objects at the scale the embedded (``tile=128``) or tiny (``tile=64``) models were
    trained on, so that trained models predict confidently, unlike on noise."""
    import numpy as np

    from mmext.datasets.shape_scenes import render_scene
    rng = np.random.default_rng(seed)
    rows, cols = -(-size[0] // tile), -(-size[1] // tile)
    grid = [np.concatenate([render_scene(rng, tile)[0] for _ in range(cols)], axis=1) for _ in range(rows)]
    return np.ascontiguousarray(np.concatenate(grid)[:size[0], :size[1], ::-1])

"""Models, batches and synthetic data samples for mmext's benchmark and FLOP tools.

All of it works for mmseg and mmdet configs alike: the host library is the config's
``default_scope``.
"""
import copy
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.config import Config, ConfigDict
from mmengine.logging import MMLogger
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import Runner, load_checkpoint


def build_model(cfg: Config, device: str = 'cpu', checkpoint: Optional[str] = None,
                seed: Optional[int] = 0) -> nn.Module:
    """Build ``cfg.model`` in the config's scope, as the Runner does, without a Runner.

    SyncBN becomes BN (one process), the weights are initialized from ``seed`` (``init_weights``,
    so nothing is downloaded by configs with ``pretrained=None``) or loaded from ``checkpoint``.

    Returns:
        the model on ``device``, in train mode.
    """
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    if seed is not None:
        torch.manual_seed(seed)
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    if checkpoint:
        load_checkpoint(model, checkpoint, map_location='cpu', revise_keys=[(r'^module\.', '')])
    else:
        model.init_weights()
    return model.to(device)


def copy_weights(src: nn.Module, dst: nn.Module, strict: bool) -> Dict[str, List[str]]:
    """Load ``src``'s state_dict into ``dst`` where names and shapes agree.

    Args:
        strict: require identical layouts (every key and shape matches); otherwise copy the
            matching entries and leave the others as initialized.

    Returns:
        dict with the ``copied`` keys, the keys of ``dst`` that were ``kept`` (not in ``src`` or of
        another shape) and the keys of ``src`` that were ``unused``.
    """
    if strict:
        dst.load_state_dict(src.state_dict(), strict=True)
        return dict(copied=sorted(dst.state_dict()), kept=[], unused=[])
    source, target = src.state_dict(), dst.state_dict()
    same = {k: v for k, v in source.items() if k in target and target[k].shape == v.shape}
    dst.load_state_dict(same, strict=False)
    return dict(copied=sorted(same), kept=sorted(set(target) - set(same)),
                unused=sorted(set(source) - set(same)))


def plain_dataloader_cfg(dataloader_cfg: ConfigDict, batch_size: Optional[int] = None) -> ConfigDict:
    """A copy of a dataloader config that loads in the main process (``num_workers=0``), with a
    finite sampler (mmengine's ``DefaultSampler``, no shuffling) and optionally another batch size."""
    cfg = copy.deepcopy(dataloader_cfg)
    cfg.update(num_workers=0, persistent_workers=False,
               sampler=dict(type='DefaultSampler', shuffle=False))
    if batch_size is not None:
        cfg.batch_size = batch_size
    return cfg


def iter_batches(cfg: Config, split: str = 'train', max_batches: Optional[int] = None,
                 batch_size: Optional[int] = None) -> Iterator[dict]:
    """The first ``max_batches`` batches (all if None) of the config's ``<split>_dataloader``, not
    preprocessed, one at a time. The dataloader runs in the main process in dataset order
    (:func:`plain_dataloader_cfg`); the embedded dataset is generated on first use."""
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    loader = Runner.build_dataloader(plain_dataloader_cfg(cfg[f'{split}_dataloader'], batch_size))
    for index, batch in enumerate(loader):
        if max_batches is not None and index >= max_batches:
            return
        yield batch


def load_batches(cfg: Config, split: str = 'train', max_batches: Optional[int] = None,
                 batch_size: Optional[int] = None) -> List[dict]:
    """:func:`iter_batches` as a list in memory; raises if the dataloader gives no batch."""
    batches = list(iter_batches(cfg, split, max_batches, batch_size))
    if not batches:
        raise ValueError(f'load_batches: the {split} dataloader gave no batch (an empty dataset?)')
    return batches


def quiet_logs() -> None:
    """Make mmengine's current logger show warnings and errors only (``init_weights`` logs every
    parameter's initialization at INFO level when no Runner has set up a log file)."""
    if not MMLogger.check_instance_created('mmext_tools'):
        MMLogger.get_instance('mmext_tools', log_level='WARNING')


def preprocess(model: nn.Module, batch: dict, training: bool = False) -> dict:
    """The model's ``data_preprocessor`` on a raw batch (to the model's device, normalized, padded)."""
    with torch.no_grad():
        return model.data_preprocessor(batch, training)


def predict(model: nn.Module, data: dict) -> list:
    """Inference on a preprocessed batch, as a test loop runs it (eval mode, no autograd)."""
    model.eval()
    with torch.no_grad():
        return model(**data, mode='predict')


def total_loss(losses: Dict[str, Any]) -> torch.Tensor:
    """The scalar a Runner back-propagates: the sum over the entries whose key contains 'loss'
    (each tensor, or each tensor of a per-level list, averaged), as mmengine's ``parse_losses``."""
    terms = []
    for key, value in losses.items():
        if 'loss' in key:
            terms.extend(v.mean() for v in (value if isinstance(value, (list, tuple)) else [value]))
    if not terms:
        raise ValueError(f'total_loss: no entry named *loss* among {sorted(losses)}')
    return sum(terms)


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


def meta_shapes(cfg: Config, shape: Tuple[int, int], batch: int) -> Dict[str, Any]:
    """Shapes of the backbone/neck features and, for a cascade segmentor, of the first stage's
    coarse logits, for (batch, 3, H, W) inputs: computed on the 'meta' device (no memory, no math).

    Returns:
        dict with ``feats`` (list of shape tuples) and ``coarse`` (a shape tuple, or None).
    """
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    with torch.device('meta'):
        model = MODELS.build(cfg.model).eval()
        with torch.no_grad():
            feats = model.extract_feat(torch.empty(batch, 3, *shape))
            heads = getattr(model, 'decode_head', None)
            coarse = heads[0].forward(feats) if isinstance(heads, nn.ModuleList) else None
    return dict(feats=[tuple(f.shape) for f in feats],
                coarse=tuple(coarse.shape) if coarse is not None else None)


def random_like_shapes(shapes: Sequence[Tuple[int, ...]], device: str = 'cpu',
                       generator: Optional[torch.Generator] = None) -> List[torch.Tensor]:
    """Standard-normal fp32 tensors of the given shapes (on ``device``)."""
    return [torch.randn(s, generator=generator).to(device) for s in shapes]

"""The head pairs that mmext's benchmarks compare, one adapter object per pair.

An adapter is the one place that knows a pair: its configs, which training runs compare it
(``heads_vs_builtin.py``) and, for a pair with a built-in head, how to swap the head in a config,
build it alone, share weights between the two sides, make its inputs and call its forward, loss and
predict (``benchmark_heads.py``), private mmseg methods included. The scripts hold no per-head case.

Shapes: ``B`` images, ``C`` feature channels, ``K`` classes, ``h x w`` a feature map, ``P`` points.
This module is imported by the scripts next to it (``python tools/benchmarks/X.py`` puts this folder
on ``sys.path``).
"""
import copy
import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
import torch.nn as nn
from mmengine.config import Config, ConfigDict
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import MODELS, init_default_scope

from mmext.analysis import copy_weights, meta_shapes
from mmext.det.heads import DLDEHead
from mmext.testing import det_samples, random_like_shapes, seg_samples

MMEXT, BUILTIN = 'mmext', 'builtin'
LABELS = (MMEXT, BUILTIN)
SEG_METRICS = ('mIoU', 'mBIoU')
DET_METRICS = ('coco/bbox_mAP', 'coco/bbox_mAP_50')


@dataclass(frozen=True)
class Size:
    """Input images of a benchmark: (height, width), batch, and the class count (None: the config's)."""
    name: str
    height: int
    width: int
    batch: int
    num_classes: Optional[int] = None

    @property
    def shape(self) -> Tuple[int, int]:
        return self.height, self.width


CITYSCAPES = Size('paper', 512, 1024, 2, 19)  # mmseg's Cityscapes crop, 2 images per GPU
COCO = Size('paper', 800, 1333, 2, 80)  # mmdet's COCO 1x: 800x1333 (padded to 800x1344), 2 per GPU


@dataclass(frozen=True)
class TrainingRun:
    """One ``tools/train.py`` run: the table's row name, the config (relative to the repository root)
    and its ``--cfg-options``."""
    name: str
    config: str
    options: Tuple[str, ...] = ()


@dataclass
class HeadInputs:
    """What both heads of a pair get: (B, C, h, w) features per level, (B, K, h, w) coarse logits
    (cascade heads), data samples with ground truth, their metainfo, and (B, P, 2) point coords
    (PointRend's forward)."""
    feats: List[torch.Tensor]
    coarse: Optional[torch.Tensor]
    samples: list
    metas: List[dict]
    coords: Optional[torch.Tensor]

    def grad_tensors(self) -> List[torch.Tensor]:
        return [t for t in [*self.feats, self.coarse] if t is not None]


class HeadPair:
    """An mmext head and its baseline, compared by training both (``heads_vs_builtin.py``)."""
    metrics: Tuple[str, ...]  # of the final validation; the first is averaged over seeds
    # --cfg-options that make tools/test.py score the coarse output of the final checkpoint; () for none
    coarse_test_options: Tuple[str, ...] = ()

    def training_runs(self) -> Tuple[TrainingRun, TrainingRun]:
        """The mmext run and the baseline run, in this order."""
        raise NotImplementedError


class BuiltinHeadPair(HeadPair):
    """An mmext head and the host library's built-in head for the same task, in one config: also
    measured head against head (``benchmark_heads.py``).

    Args:
        config: the recipe, relative to the repository root.
        mmext: the mmext head's registered type.
        builtin: the built-in head's registered type.
        paper: the paper's input size.
    """
    host: str  # the config's default_scope
    # Whether the built-in head loads the mmext head's state_dict as is (so the outputs are compared).
    same_layout: bool
    fake_samples: Callable[..., list]  # (shape, batch, num_classes, generator=) -> data samples
    # Whether the head's inference cost grows with the input size beyond the backbone's (so that it is
    # also timed per input size, at batch 1).
    inference_grows_with_size = False

    def __init__(self, config: str, mmext: str, builtin: str, paper: Size):
        self.config, self.paper = config, paper
        self.heads = {MMEXT: mmext, BUILTIN: builtin}

    # -- configs

    def head_cfg(self, cfg: Config) -> ConfigDict:
        """The config of the head under test within ``cfg.model``."""
        raise NotImplementedError

    def class_heads(self, cfg: Config) -> List[ConfigDict]:
        """The configs of every head whose ``num_classes`` follows the dataset's."""
        return [self.head_cfg(cfg)]

    def swap_head(self, cfg: Config, label: str) -> Config:
        """A copy of ``cfg`` with the mmext (``label='mmext'``) or the built-in head."""
        cfg = copy.deepcopy(cfg)
        self.head_cfg(cfg).type = self.heads[label]
        return cfg

    def benchmark_config(self, cfg: Config, label: str) -> Config:
        """:meth:`swap_head`, with the test settings that give both heads the same load."""
        return self.swap_head(cfg, label)

    def with_num_classes(self, cfg: Config, num_classes: Optional[int]) -> Config:
        """A copy of the config whose heads predict ``num_classes`` classes (None: unchanged)."""
        if num_classes is None:
            return cfg
        cfg = copy.deepcopy(cfg)
        for head in self.class_heads(cfg):
            head.num_classes = num_classes
        return cfg

    def num_classes(self, cfg: Config) -> int:
        return self.head_cfg(cfg).num_classes

    # -- heads and weights

    def head_build_cfg(self, cfg: Config) -> dict:
        """What ``MODELS.build`` takes to build the head under test alone."""
        return self.head_cfg(cfg)

    def build_head(self, cfg: Config, device: str, seed: int = 0) -> nn.Module:
        """The config's head under test alone, initialized from ``seed``, on ``device``."""
        init_default_scope(self.host)
        torch.manual_seed(seed)
        head = revert_sync_batchnorm(MODELS.build(self.head_build_cfg(cfg)))
        head.init_weights()
        return head.to(device)

    def share_weights(self, mmext: nn.Module, builtin: nn.Module) -> str:
        """Copy the mmext side's weights into the built-in side (two heads, or two models holding
        them); returns a sentence saying how the weights were shared."""
        copy_weights(mmext, builtin, strict=True)
        return 'copied (state_dict loads strict)'

    # -- inputs and calls

    def point_coords(self, cfg: Config, batch: int, generator: torch.Generator,
                     device: str) -> Optional[torch.Tensor]:
        """(B, P, 2) points for the forward of a point head; None for other heads."""
        return None

    def make_inputs(self, cfg: Config, size: Size, device: str, seed: int = 0) -> HeadInputs:
        """Random inputs of the shapes that the config's model gives the head for ``size`` images:
        features (shapes from the backbone and neck on the 'meta' device), coarse logits and data
        samples with random ground truth. Features and logits require grad, as in a model, where
        the loss back-propagates into the backbone."""
        generator = torch.Generator().manual_seed(seed)
        padded = padded_shape(cfg, size.shape)
        shapes = meta_shapes(cfg, padded, size.batch)
        feats = random_like_shapes(shapes['feats'], device, generator)
        coarse = random_like_shapes([shapes['coarse']], device, generator)[0] if shapes['coarse'] else None
        samples = self.fake_samples(size.shape, size.batch, self.num_classes(cfg), generator=generator)
        for sample in samples:
            sample.set_metainfo(dict(pad_shape=padded, batch_input_shape=padded))
        coords = self.point_coords(cfg, size.batch, generator, device)
        inputs = HeadInputs(feats, coarse, [s.to(device) for s in samples], [s.metainfo for s in samples],
                            coords)
        for tensor in inputs.grad_tensors():
            tensor.requires_grad_(True)
        return inputs

    def forward(self, label: str, head: nn.Module, inputs: HeadInputs) -> Any:
        """The head's forward pass on ``inputs`` (the ``label`` side's way of calling it)."""
        raise NotImplementedError

    def loss(self, cfg: Config, head: nn.Module, inputs: HeadInputs) -> Dict[str, Any]:
        """``head.loss`` on ``inputs``, as the model calls it in training."""
        raise NotImplementedError

    def predict(self, cfg: Config, head: nn.Module, inputs: HeadInputs) -> Any:
        """``head.predict`` on ``inputs``, as the model calls it at test time."""
        raise NotImplementedError


def padded_shape(cfg: Config, shape: Tuple[int, int]) -> Tuple[int, int]:
    """The (H, W) the config's data preprocessor makes of an image: at least its ``size``,
    rounded up to its ``pad_size_divisor`` / ``size_divisor``."""
    pre = cfg.model.get('data_preprocessor') or {}
    height, width = shape
    if pre.get('size'):
        height, width = max(height, pre['size'][0]), max(width, pre['size'][1])
    divisor = pre.get('pad_size_divisor') or pre.get('size_divisor') or 1
    return math.ceil(height / divisor) * divisor, math.ceil(width / divisor) * divisor


class CascadeHeadPair(BuiltinHeadPair):
    """Two mmseg cascade decode heads of the same layout, as the second stage of the config's
    ``CascadeEncoderDecoder``."""
    host = 'mmseg'
    metrics = SEG_METRICS
    same_layout = True
    fake_samples = staticmethod(seg_samples)
    stage = 1

    def head_cfg(self, cfg: Config) -> ConfigDict:
        return cfg.model.decode_head[self.stage]

    def class_heads(self, cfg: Config) -> List[ConfigDict]:
        return list(cfg.model.decode_head)

    def training_runs(self) -> Tuple[TrainingRun, TrainingRun]:
        return tuple(TrainingRun(f'{library} {head}', self.config,
                                 (f'model.decode_head.{self.stage}.type={head}',))
                     for library, head in (('mmext', self.heads[MMEXT]), (self.host, self.heads[BUILTIN])))

    def forward(self, label: str, head: nn.Module, inputs: HeadInputs) -> torch.Tensor:
        """(B, K, h, w) logits at feature size."""
        return head(inputs.feats, inputs.coarse)

    def loss(self, cfg: Config, head: nn.Module, inputs: HeadInputs) -> Dict[str, Any]:
        return head.loss(inputs.feats, inputs.coarse, inputs.samples, cfg.model.train_cfg)

    def predict(self, cfg: Config, head: nn.Module, inputs: HeadInputs) -> torch.Tensor:
        return head.predict(inputs.feats, inputs.coarse, inputs.metas, cfg.model.test_cfg)


class PointRendPair(CascadeHeadPair):
    """mmext ``PointRendHead`` vs mmseg ``PointHead``. Inference is the full subdivision; the
    coarse FPN prediction of a trained model is scored too, for the boundary IoU gain."""
    coarse_test_options = ('model.test_cfg.subdivision_steps=0',)
    inference_grows_with_size = True  # the subdivision steps refine up to the image's resolution

    def point_coords(self, cfg: Config, batch: int, generator: torch.Generator,
                     device: str) -> torch.Tensor:
        """(B, P, 2) uniform random points, P the config's ``train_cfg.num_points``."""
        return torch.rand(batch, cfg.model.train_cfg.num_points, 2, generator=generator).to(device)

    def forward(self, label: str, head: nn.Module, inputs: HeadInputs) -> torch.Tensor:
        """(B, K, P) point logits: fine features and coarse logits sampled at the points, then the
        MLP. mmseg's PointHead has no public method for it: its private samplers are called."""
        fine = head._transform_inputs(inputs.feats)
        if label == MMEXT:
            return head.point_logits(fine, inputs.coarse, inputs.coords)
        return head.forward(head._get_fine_grained_point_feats(fine, inputs.coords),
                            head._get_coarse_point_feats(inputs.coarse, inputs.coords))


class DLDEPair(BuiltinHeadPair):
    """mmext ``DLDEHead`` vs mmdet ``RetinaHead``: different layouts. The built-in side is the DLDE
    config without the DLDE keys and hook, which is ``configs/retinanet_r50.py``."""
    host = 'mmdet'
    metrics = DET_METRICS
    same_layout = False
    fake_samples = staticmethod(det_samples)
    dlde_keys = ('embedding_size', 'means_update', 'means_lr', 'init_weight', 'init_bias')
    builtin_config = 'configs/retinanet_r50.py'
    # How many boxes pass the config's score_thr of 0.05 depends on the weights, and with untrained ones
    # it differs arbitrarily between the heads (often none pass); at 0 both post-process nms_pre boxes
    # per level, the full load of a confident model.
    test_overrides = dict(score_thr=0.0)

    def head_cfg(self, cfg: Config) -> ConfigDict:
        return cfg.model.bbox_head

    def swap_head(self, cfg: Config, label: str) -> Config:
        cfg = copy.deepcopy(cfg)
        dropped = self.dlde_keys if label == BUILTIN else ()
        cfg.model.bbox_head = ConfigDict({k: v for k, v in cfg.model.bbox_head.items() if k not in dropped},
                                         type=self.heads[label])
        if label == BUILTIN and 'custom_hooks' in cfg:
            cfg.custom_hooks = [h for h in cfg.custom_hooks if h.type != 'DLDEMeansHook']
        return cfg

    def benchmark_config(self, cfg: Config, label: str) -> Config:
        cfg = self.swap_head(cfg, label)
        cfg.model.test_cfg.update(self.test_overrides)
        return cfg

    def head_build_cfg(self, cfg: Config) -> dict:
        """An mmdet detector hands its train and test settings to its head."""
        return dict(cfg.model.bbox_head, train_cfg=cfg.model.train_cfg, test_cfg=cfg.model.test_cfg)

    def share_weights(self, mmext: nn.Module, builtin: nn.Module) -> str:
        """Copy the tensors of equal name and shape (both sides are initialized from the same seed),
        and give the DLDE head random unit class means, as after training (zero means score every
        anchor alike)."""
        shared = copy_weights(mmext, builtin, strict=False)
        dlde = next(module for module in mmext.modules() if isinstance(module, DLDEHead))
        means = torch.randn(dlde.means.shape, generator=torch.Generator().manual_seed(0))
        dlde.means.copy_(means / means.norm(dim=1, keepdim=True))
        return (f'same-seed init; {len(shared["copied"])} tensors of equal name and shape copied; '
                f'built-in only: {", ".join(shared["kept"]) or "none"}; '
                f'mmext only: {", ".join(shared["unused"]) or "none"}')

    def training_runs(self) -> Tuple[TrainingRun, TrainingRun]:
        return (TrainingRun(f'mmext {self.heads[MMEXT]}', self.config),
                TrainingRun(f'{self.host} {self.heads[BUILTIN]}', self.builtin_config))

    def forward(self, label: str, head: nn.Module, inputs: HeadInputs):
        """Per level, (B, A*K, h, w) class scores and (B, A*4, h, w) box deltas; DLDE's scores are
        the cosine scores of its embeddings."""
        scores, deltas = head(inputs.feats)
        if label == MMEXT:
            scores = [head.embeddings_to_logits(s) for s in scores]
        return scores, deltas

    def loss(self, cfg: Config, head: nn.Module, inputs: HeadInputs) -> Dict[str, Any]:
        return head.loss(inputs.feats, inputs.samples)

    def predict(self, cfg: Config, head: nn.Module, inputs: HeadInputs) -> list:
        return head.predict(inputs.feats, inputs.samples)


class Net2VecProbePair(HeadPair):
    """mmext's Net2Vec probe on IoU-encoded masks vs the plain BCE probe on raw masks (there is no
    built-in concept probe); both read the backbone of ``work_dirs/ocr_r50/iter_640.pth`` unless
    ``model.backbone.init_cfg.checkpoint`` says otherwise."""
    metrics = ('IoU.ring', 'mIoU')

    def training_runs(self) -> Tuple[TrainingRun, TrainingRun]:
        return (TrainingRun('mmext Net2VecHead (IoU-encoded)', 'configs/net2vec_r50.py'),
                TrainingRun('mmext Net2VecHead (raw BCE)', 'configs/net2vec_r50_bce.py'))


PAIRS: Dict[str, HeadPair] = {
    'ocr': CascadeHeadPair('configs/ocr_r50.py', 'ObjectContextHead', 'OCRHead', CITYSCAPES),
    'pointrend': PointRendPair('configs/pointrend_r50.py', 'PointRendHead', 'PointHead', CITYSCAPES),
    'dlde': DLDEPair('configs/dlde_retinanet_r50.py', 'DLDEHead', 'RetinaHead', COCO),
    'net2vec': Net2VecProbePair(),
}
# The pairs with a built-in head, which benchmark_heads.py measures head against head.
BUILTIN_PAIRS: Dict[str, BuiltinHeadPair] = {
    name: pair for name, pair in PAIRS.items() if isinstance(pair, BuiltinHeadPair)}

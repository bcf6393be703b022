"""Models built from a config without a Runner, for measuring them: building, sharing weights between
two models, preprocessing, inference and the training loss, and feature shapes on the 'meta' device.

All of it works for mmseg and mmdet configs alike: the host library is the config's
``default_scope``.
"""
from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import MODELS, init_default_scope
from mmengine.runner import load_checkpoint

from mmext.engine import patch_mmengine


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
        patch_mmengine()  # the restricted loader
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

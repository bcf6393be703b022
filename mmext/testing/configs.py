"""The tests' tiny configs (``tests/configs`` of the repository) pointed at a temporary dataset and
work directory."""
from typing import Optional

from mmengine.config import Config

from .tools import REPO_ROOT


def tiny_config(name: str, data_root, work_dir, options: Optional[dict] = None,
                runtime: Optional[str] = None) -> Config:
    """The tiny config ``name`` with every dataloader (and COCO evaluator) reading ``data_root``,
    ``work_dir`` set and ``options`` merged in.

    ``runtime`` replaces the config's custom_hooks by those of a ``configs/_base_`` runtime, so that the
    hooks under test are exactly the ones every mmext config gets.
    """
    cfg = Config.fromfile(REPO_ROOT / 'tests/configs' / f'{name}.py')
    for split in ('train', 'val', 'test'):
        cfg[f'{split}_dataloader'].dataset.data_root = str(data_root)
    for split in ('val', 'test'):  # COCO-style evaluators read their own annotation file
        if 'ann_file' in cfg[f'{split}_evaluator']:
            cfg[f'{split}_evaluator'].ann_file = f'{data_root}/annotations/instances_val.json'
    if runtime is not None:
        cfg.custom_hooks = Config.fromfile(REPO_ROOT / 'configs/_base_' / f'{runtime}.py').custom_hooks
    cfg.merge_from_dict(dict(options or {}, work_dir=str(work_dir)))
    return cfg

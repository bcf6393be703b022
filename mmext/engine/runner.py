"""What ``tools/train.py``, ``tools/test.py`` and the analysis tools share: the flags of mmseg's and
mmdet's tools, config loading and runner building. The host library (mmseg or mmdet) is read from the
config's ``default_scope``, so one pair of tools serves segmentation and detection configs."""
import argparse
import os
import os.path as osp
from typing import Optional

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS, init_default_scope
from mmengine.runner import Runner

from .patches import patch_mmengine

HOSTS = ('mmseg', 'mmdet')


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """Add the flags that mmseg's and mmdet's train.py and test.py share."""
    parser.add_argument('--work-dir', help='the directory for logs and checkpoints')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config keys, e.g. model.decode_head.1.type=OCRHead '
        'train_cfg.max_iters=100 (lists as key="[a,b]")')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def load_config(args: argparse.Namespace) -> Config:
    """Read ``args.config`` (its ``custom_imports`` register mmext), apply the command-line
    overrides and the default work_dir ``./work_dirs/<config name>``, as mmseg's tools do."""
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    host = cfg.get('default_scope')
    if host not in HOSTS:
        raise ValueError(f'{args.config}: default_scope={host!r}; mmext tools run configs whose '
                         f"default_scope is one of {HOSTS} (set it as mmseg's and mmdet's configs do)")
    return cfg


def load_analysis_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """Read a config for an analysis tool (no runner): apply ``--cfg-options`` and make its
    ``default_scope`` the current registry scope, so that its type names resolve."""
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    return cfg


def build_runner(cfg: Config) -> Runner:
    """``Runner.from_cfg``, or the registered runner named by ``cfg.runner_type``, with mmext's mmengine
    patches installed (the run may load checkpoints)."""
    patch_mmengine()
    return RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)

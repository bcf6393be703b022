"""Train a segmentor or a detector: mmseg's/mmdet's tools/train.py, for mmext and stock configs."""
import argparse
import logging

from mmengine.logging import print_log

import mmext  # noqa: F401  (safe checkpoint loading for --resume / load_from, even without custom_imports)
from mmext.engine import add_common_args, build_runner, load_config, setup_distributed


def parse_args():
    parser = argparse.ArgumentParser(description='Train a segmentor or a detector')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from this checkpoint, or without a value from the latest checkpoint in the '
        'work_dir')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision: fp16 with loss scaling on a GPU, bf16 on a CPU with bf16 units')
    add_common_args(parser)
    return parser.parse_args()


def main():
    args = parse_args()
    cfg = load_config(args)

    if args.amp:
        if cfg.optim_wrapper.type in ('AmpOptimWrapper', 'MixedPrecisionOptimWrapper'):
            print_log(f'Mixed precision is already enabled in your config ({cfg.optim_wrapper.type}).',
                      logger='current', level=logging.WARNING)
        elif cfg.optim_wrapper.type != 'OptimWrapper':
            raise ValueError('--amp needs optim_wrapper.type=OptimWrapper, got '
                             f'{cfg.optim_wrapper.type}')
        else:  # CUDA: fp16 with dynamic loss scaling; CPU: bf16, or an error naming the missing unit
            cfg.optim_wrapper.type = 'MixedPrecisionOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'

    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume

    setup_distributed(cfg)  # gloo and CPU DDP when CUDA is unavailable
    build_runner(cfg).train()


if __name__ == '__main__':
    main()

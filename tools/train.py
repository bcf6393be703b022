"""Train a segmentor or a detector: mmseg's/mmdet's tools/train.py, for mmext and stock configs."""
import argparse
import logging

from mmengine.logging import print_log

import mmext  # noqa: F401  (registers the installed hosts; build_runner installs the checkpoint patches)
from mmext.engine import add_common_args, build_runner, load_config, setup_distributed, teardown_distributed
from mmext.engine.optim import optim_wrapper_in


def parse_args():
    parser = argparse.ArgumentParser(description='Train a segmentor or a detector')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from this checkpoint, or without a value from the latest checkpoint in the '
        'work_dir')
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument('--amp', action='store_true',
                           help='mixed precision: fp16 with loss scaling on a GPU, bf16 on a CPU with bf16 '
                           'units (refused on a CPU without them)')
    precision.add_argument('--fp32', action='store_true',
                           help='train in fp32 even where the config asks for mixed precision')
    add_common_args(parser)
    return parser.parse_args()


def main():
    args = parse_args()
    cfg = load_config(args)

    if args.fp32:
        cfg.optim_wrapper = optim_wrapper_in(cfg.optim_wrapper, 'fp32')
        print_log(f'--fp32: training in fp32 ({cfg.optim_wrapper.type})', logger='current')
    if args.amp:  # CUDA: fp16 with dynamic loss scaling; CPU: bf16, or an error naming the missing unit
        if cfg.optim_wrapper.type == 'AmpOptimWrapper':
            print_log('Mixed precision is already enabled in your config (AmpOptimWrapper).',
                      logger='current', level=logging.WARNING)
        cfg.optim_wrapper = optim_wrapper_in(cfg.optim_wrapper, 'mixed')

    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume

    setup_distributed(cfg)  # gloo and CPU DDP when CUDA is unavailable
    build_runner(cfg).train()
    teardown_distributed()  # every rank finished: a clean exit (mmext.engine.dist)


if __name__ == '__main__':
    main()

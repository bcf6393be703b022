"""Test (and evaluate) a segmentor or a detector: mmseg's/mmdet's tools/test.py in one script."""
import argparse

from mmengine.config import ConfigDict

import mmext  # noqa: F401  (registers the installed hosts; build_runner installs the checkpoint patches)
from mmext.engine import add_common_args, build_runner, load_config, setup_distributed, teardown_distributed


def parse_args():
    parser = argparse.ArgumentParser(description='Test (and evaluate) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--out', help='segmentation: directory for the predicted label maps; detection: a .pkl '
        'file for the raw results')
    parser.add_argument('--show', action='store_true', help='show prediction results')
    parser.add_argument('--show-dir', help='directory where painted predictions are saved')
    parser.add_argument('--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument('--tta', action='store_true', help='test-time augmentation')
    add_common_args(parser)
    return parser.parse_args()


def enable_visualization(cfg, args, host):
    """Turn on the visualization hook as mmseg's / mmdet's test.py do."""
    hook = cfg.default_hooks.get('visualization')
    if hook is None:
        raise RuntimeError('--show/--show-dir need default_hooks.visualization in the config')
    hook['draw'] = True
    if args.show:
        hook['show'], hook['wait_time'] = True, args.wait_time
    if args.show_dir:
        if host == 'mmseg':
            cfg.visualizer['save_dir'] = args.show_dir
        else:
            hook['test_out_dir'] = args.show_dir


def main():
    args = parse_args()
    cfg = load_config(args)
    host = cfg.default_scope
    cfg.load_from = args.checkpoint

    if args.show or args.show_dir:
        enable_visualization(cfg, args, host)
    if args.tta:
        if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
            raise ValueError('--tta needs tta_model and tta_pipeline in the config')
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    if args.out is not None and host == 'mmseg':
        evaluators = cfg.test_evaluator if isinstance(cfg.test_evaluator, list) else [cfg.test_evaluator]
        for evaluator in evaluators:  # the metric that writes prediction PNGs
            if evaluator['type'] == 'IoUMetric':
                evaluator.update(output_dir=args.out, keep_results=True)
    if args.out is not None and host == 'mmdet' and not args.out.endswith(('.pkl', '.pickle')):
        raise ValueError(f'--out must be a .pkl file for detection configs, got {args.out}')

    setup_distributed(cfg)  # gloo and CPU DDP when CUDA is unavailable
    runner = build_runner(cfg)
    if args.out is not None and host == 'mmdet':
        from mmdet.evaluation import DumpDetResults
        runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=args.out))
    runner.test()
    teardown_distributed()  # every rank finished: a clean exit (mmext.engine.dist)


if __name__ == '__main__':
    main()

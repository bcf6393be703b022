"""Evaluate an exported model on the config's test set with the config's evaluator."""
import argparse
import numbers
import sys
from pathlib import Path

from mmengine.config import DictAction

import mmext  # noqa: F401  (registers the datasets and metrics)
from mmext.deploy import BACKENDS, PRECISIONS, DeployedModel, DeployError
from mmext.deploy.evaluation import evaluate
from mmext.engine import load_analysis_config


def parse_args():
    parser = argparse.ArgumentParser(description='Test an exported model')
    parser.add_argument('config')
    parser.add_argument('export_dir')
    parser.add_argument('--backend', choices=BACKENDS, default='onnxruntime')
    parser.add_argument('--precision', choices=PRECISIONS, default='fp32')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    return parser.parse_args()


def main():
    args = parse_args()
    cfg = load_analysis_config(args.config, args.cfg_options)
    metrics = evaluate(DeployedModel(args.export_dir, args.backend, args.precision), cfg)
    # numpy scalars too (mmseg's metrics are float32), printed as mmengine's logger prints them
    print('  '.join(f'{key}: {value:.4f}' if isinstance(value, numbers.Real) else f'{key}: {value}'
                    for key, value in metrics.items()))


if __name__ == '__main__':
    try:
        main()
    except DeployError as error:  # a refused file or input: its reason, without a traceback
        sys.exit(f'{Path(__file__).name}: {error}')

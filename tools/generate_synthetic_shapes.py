"""Generate the embedded synthetic shapes dataset (mmseg layout + COCO instances).

    python tools/generate_synthetic_shapes.py                      # data/synthetic_shapes, seed 0
    python tools/generate_synthetic_shapes.py --seed 1 --force     # regenerate with another seed

Embedded configs generate it on first use; this is for regenerating or inspecting it. Options left
out take the defaults of :func:`mmext.datasets.ensure_synthetic_shapes`.
"""
import argparse
from pathlib import Path
from typing import Optional, Sequence

from mmext.datasets import ensure_synthetic_shapes


def main(argv: Optional[Sequence[str]] = None) -> Path:
    """Parse ``argv`` (default: the command line), make sure the dataset is in place, print where."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     argument_default=argparse.SUPPRESS)
    parser.add_argument('--data-root')
    parser.add_argument('--seed', type=int)
    parser.add_argument('--num-train', type=int)
    parser.add_argument('--num-val', type=int)
    parser.add_argument('--size', type=int, help='image side in px')
    parser.add_argument('--force', action='store_true', help='regenerate even if up to date')
    root = ensure_synthetic_shapes(**vars(parser.parse_args(argv)))
    print(f'synthetic shapes ready in {root}')
    return root


if __name__ == '__main__':
    main()

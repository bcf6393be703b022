"""Generate the embedded synthetic shapes dataset (mmseg layout + COCO instances).

    python tools/generate_synthetic_shapes.py                      # data/synthetic_shapes, seed 0
    python tools/generate_synthetic_shapes.py --data-root data/shapes_seed1 --seed 1   # beside it
    python tools/generate_synthetic_shapes.py --seed 1 --force     # replace it with seed 1

Embedded configs generate it on first use; this is for regenerating or inspecting it. Options left
out take the defaults of :func:`mmext.datasets.ensure_synthetic_shapes`. A folder holding the dataset
of other parameters is refused unless --force; one holding files the generator did not write, always.
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
    parser.add_argument('--force', action='store_true',
                        help='regenerate even if up to date or generated with other parameters')
    try:
        root = ensure_synthetic_shapes(**vars(parser.parse_args(argv)))
    except FileExistsError as error:  # a refused folder: the message says why, a traceback would not
        parser.exit(1, f'{parser.prog}: error: {error}\n')
    print(f'synthetic shapes ready in {root}')
    return root


if __name__ == '__main__':
    main()

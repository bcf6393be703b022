"""Generate the embedded synthetic shapes dataset (mmseg layout + COCO instances).

    python tools/generate_synthetic_shapes.py                      # data/synthetic_shapes, seed 0
    python tools/generate_synthetic_shapes.py --seed 1 --force     # regenerate with another seed

Embedded configs generate it on first use; this is for regenerating or inspecting it.
"""
from mmext.datasets.synthetic_shapes import main

if __name__ == '__main__':
    main()

"""Show what PointRend does on one test image: a PNG of the image, its ground truth, the coarse
prediction, the points that each subdivision step re-predicts, and the refined prediction.

    .venv/bin/python tools/analysis/visualize_point_rend.py configs/pointrend_r50.py \\
        work_dirs/pointrend_r50/iter_1000.pth --index 0 --out work_dirs/pointrend_r50/points_0.png

The points of step 1 are drawn in yellow and those of later steps in cyan, magenta, ...; each step
runs on a map twice as fine as the one before, so late points sit on the contours. A step that
re-predicts every pixel of its map is listed in the title but not drawn. Inference is on
the whole (padded) image, whatever ``test_cfg.mode`` says.
"""
import argparse

import cv2
import numpy as np
import torch
from mmengine.config import DictAction
from mmengine.dataset import pseudo_collate
from mmseg.apis import init_model
from mmseg.registry import DATASETS

from mmext.engine import load_analysis_config
from mmext.seg.heads import PointRendHead

STEP_COLOURS = [(255, 255, 0), (0, 255, 255), (255, 0, 255), (255, 128, 0)]  # RGB


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--index', type=int, default=0, help='image index in the test dataset')
    parser.add_argument('--out', required=True, help='PNG to write')
    parser.add_argument('--zoom', type=int, default=3, help='nearest-neighbour upscaling of each panel')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config keys')
    return parser.parse_args()


def colourize(label: np.ndarray, palette) -> np.ndarray:
    """(H, W) class indices -> (H, W, 3) RGB; ignored pixels (255) are black."""
    lut = np.zeros((256, 3), np.uint8)
    lut[:len(palette)] = np.asarray(palette, np.uint8)
    return lut[label]


def draw_points(panel: np.ndarray, coords_per_step, zoom: int) -> np.ndarray:
    """Mark (P, 2) [0, 1] point coords of each step on a zoomed (H, W, 3) RGB panel, one dot of
    ``zoom // 2`` px per point; ``None`` entries (steps that refined every pixel) are skipped."""
    panel = panel.copy()
    height, width = panel.shape[:2]
    size = max(1, zoom // 2)
    for step, coords in enumerate(coords_per_step):
        if coords is None:
            continue
        colour = STEP_COLOURS[step % len(STEP_COLOURS)]
        for x, y in (coords.numpy() * [width, height]).astype(int):
            panel[y:y + size, x:x + size] = colour
    return panel


def with_title(panel: np.ndarray, title: str) -> np.ndarray:
    bar = np.full((22, panel.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, title, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([bar, panel], axis=0)


def render(model, data: dict, palette, zoom: int) -> np.ndarray:
    """Run the cascade step by step on one packed test sample and compose the five panels."""
    head = model.decode_head[-1]
    if not isinstance(head, PointRendHead):
        raise TypeError(f'the last decode head is {type(head).__name__}, not PointRendHead')
    batch = model.data_preprocessor(pseudo_collate([data]), False)
    sample = batch['data_samples'][0]
    with torch.no_grad():
        feats = model.extract_feat(batch['inputs'])
        coarse = model.decode_head[0].forward(feats)
        refined, coords = head.subdivide(feats, coarse, model.test_cfg)
        metas = [sample.metainfo]
        coarse_label = head.predict_by_feat(coarse, metas).argmax(1)[0]
        refined_label = head.predict_by_feat(refined, metas).argmax(1)[0]
    image = data['inputs'].permute(1, 2, 0).numpy()[..., ::-1]  # BGR -> RGB, not padded
    height, width = image.shape[:2]

    def zoomed(rgb):
        return cv2.resize(np.ascontiguousarray(rgb), None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST)

    def cropped(panel):  # the predictions cover the padded batch; show the image's part
        return panel[:height * zoom, :width * zoom]

    # Points are drawn on the whole (padded) coarse map, whose [0, 1] coords they are.
    coarse_rgb = zoomed(colourize(coarse_label.numpy(), palette))
    # A step that refines every pixel of its map (typical for step 1 on small images) says nothing
    # about uncertainty: it is named in the title but not drawn.
    scale = model.test_cfg['scale_factor']
    map_sizes = [round(coarse.shape[2] * scale**k) * round(coarse.shape[3] * scale**k)
                 for k in range(1, len(coords) + 1)]
    adaptive = [c[0] if c.shape[1] < size else None for c, size in zip(coords, map_sizes)]
    points_rgb = draw_points(coarse_rgb, adaptive, zoom)
    counts = ', '.join(f'{c.shape[1]}' + (' (all)' if a is None else '') for c, a in zip(coords, adaptive))
    panels = [
        with_title(zoomed(image), 'image'),
        with_title(cropped(zoomed(colourize(sample.gt_sem_seg.data[0].numpy(), palette))), 'ground truth'),
        with_title(cropped(coarse_rgb), 'coarse (FPN)'),
        with_title(cropped(points_rgb), f'points: {counts}'),
        with_title(cropped(zoomed(colourize(refined_label.numpy(), palette))), 'PointRend'),
    ]
    gap = np.full((panels[0].shape[0], 6, 3), 255, np.uint8)
    return np.concatenate([p for panel in panels for p in (panel, gap)][:-1], axis=1)


def main():
    args = parse_args()
    cfg = load_analysis_config(args.config, args.cfg_options)
    model = init_model(cfg, args.checkpoint, device='cpu')
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    if not 0 <= args.index < len(dataset):
        raise IndexError(f'--index {args.index} is outside the test dataset of {len(dataset)} images')
    canvas = render(model, dataset[args.index], dataset.metainfo['palette'], args.zoom)
    if not cv2.imwrite(args.out, canvas[..., ::-1]):
        raise OSError(f'could not write {args.out}')
    print(f'wrote {args.out} ({canvas.shape[1]}x{canvas.shape[0]})')


if __name__ == '__main__':
    main()

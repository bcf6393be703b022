"""Pictures of deployed predictions: label overlays and boxes on (H, W, 3) uint8 BGR images."""
from typing import Sequence

import cv2
import numpy as np

OVERLAY_OPACITY = 0.5


def overlay_labels(image: np.ndarray, labels: np.ndarray, palette: Sequence[Sequence[int]]) -> np.ndarray:
    """(H, W, 3) BGR image and (H, W) class ids -> the image blended with the RGB palette colours."""
    colours = np.asarray(palette, dtype=np.uint8)[:, ::-1]  # RGB palette -> BGR
    painted = colours[np.clip(labels, 0, len(colours) - 1)]
    return cv2.addWeighted(image, 1 - OVERLAY_OPACITY, painted, OVERLAY_OPACITY, 0)


def draw_boxes(image: np.ndarray, boxes: np.ndarray, labels: np.ndarray, scores: np.ndarray,
               classes: Sequence[str], palette: Sequence[Sequence[int]]) -> np.ndarray:
    """(H, W, 3) BGR image, (M, 4) x1y1x2y2 boxes, (M,) labels and scores -> a copy with the boxes."""
    out = image.copy()
    for (x1, y1, x2, y2), label, score in zip(boxes.round().astype(int), labels, scores):
        colour = tuple(int(c) for c in palette[label % len(palette)][::-1]) if palette else (0, 255, 0)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, 1)
        cv2.putText(out, f'{classes[label] if label < len(classes) else label} {score:.2f}',
                    (x1, max(y1 - 2, 8)), cv2.FONT_HERSHEY_SIMPLEX, 0.3, colour, 1)
    return out

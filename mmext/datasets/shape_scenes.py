"""Synthetic shape scenes: what every image of the embedded dataset shows, rendered in pure numpy.

Each scene shows 4-8 objects of five classes that differ only in *shape* (disk, square, triangle,
ring, cross). Every class draws its colours from the same (bright) distribution, so a model has to
read shape to name an object; backgrounds are dark and textured (colour blobs, a grating, noise),
objects smooth. Objects span 24 to 80 px on a 128 px image, rings have bands 6-10 px wide and crosses
arms 6-11 px wide (about one cell of a stride-8 prediction), and some objects are placed touching or
overlapping an earlier one. Painting order defines occlusion: the semantic map holds the top-most
class at each pixel, and instance masks hold only *visible* pixels.

Shape shorthand: ``S`` image side in px (scenes are square, ``H = W = S``).

A scene depends on nothing but the random generator it is given; :mod:`mmext.datasets.dataset_folder`
writes scenes into dataset folders. docs/dataset.md tells how the constants below were chosen.
"""
from typing import List, NamedTuple, Sequence, Tuple

import cv2
import numpy as np

CLASSES = ('background', 'disk', 'square', 'triangle', 'ring', 'cross')
PALETTE = [[0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200],
           [245, 130, 48]]
DISK, SQUARE, TRIANGLE, RING, CROSS = range(1, 6)

MIN_VISIBLE_AREA = 12  # px; an occluded object keeps at least this many pixels
# An occluded object also keeps this share of its pixels: enough of its shape shows to name it.
MIN_VISIBLE_FRACTION = 0.6
# Colour distance (RGB, 0-255) between an object and what it is painted on: visible, yet colour
# alone does not separate the classes because every class draws from the same distribution.
MIN_CONTRAST = 90.0
# Whether a pixel is object shows locally: background base colours come from the dark part of the
# RGB cube and carry visible fine texture (a grating and pixel noise), objects are bright and smooth.
# Which class an object is shows only in its shape: every class draws from the same colours.
BACKGROUND_COLOURS = (0.0, 100.0)  # per-channel range, RGB 0-255
OBJECT_COLOURS = (140.0, 255.0)
TEXTURE_SPREAD = 30.0  # largest per-channel deviation of the background texture from its base colour
BACKGROUND_NOISE = (8.0, 15.0)  # std of the pixel noise, RGB 0-255
OBJECT_NOISE = (0.0, 4.0)
PLACEMENT_TRIES = 30

# Lengths below are px on a 128 px image; scenes of other sizes scale them by S / 128.
REFERENCE_SIZE = 128
EXTENT_RANGE = (24.0, 80.0)  # circumscribed diameter, sampled log-uniformly
# Objects per scene, inclusive; about 30% of the pixels are objects.
NUM_OBJECTS_RANGE = (4, 8)
# Thin parts are about as wide as one cell of a stride-8 prediction (8 px; 16x16 logits on 128 px),
# so that a stride-8 head (OCRNet-D8) gets them roughly right and leaves the boundary and thin-part
# error that PointRend's point refinement targets; docs/dataset.md gives the measured ceiling.
RING_WIDTH_RANGE = (6.0, 10.0)
CROSS_WIDTH_RANGE = (6.0, 11.0)
MIN_PART_WIDTH = 2.0  # px at any size: narrower bands break apart when rasterised


class Shape(NamedTuple):
    """Geometry of one object, independent of where it is placed.

    Attributes:
        class_id: label id in 1..5 (see ``CLASSES``).
        radius: circumscribed radius in px (for a cross, the half-length of an arm).
        angle: rotation in radians.
        width: band width of a ring or arm width of a cross in px; 0 for filled shapes.
    """
    class_id: int
    radius: float
    angle: float
    width: float


def rasterize_shape(shape: Shape, center: Tuple[float, float], size: int) -> np.ndarray:
    """Exact (not anti-aliased) mask of a shape: the pixels whose centres lie inside it.

    Args:
        shape: the object's geometry.
        center: (x, y) of the shape's centre in px; pixel (row i, col j) has its centre at (j, i).
        size: S.

    Returns:
        (S, S) bool mask; parts outside the image are cut off.
    """
    cx, cy = center
    x = np.arange(size, dtype=np.float32)[None, :] - np.float32(cx)
    y = np.arange(size, dtype=np.float32)[:, None] - np.float32(cy)
    r, half_width = shape.radius, shape.width / 2
    if shape.class_id in (DISK, RING):
        dist2 = x * x + y * y
        inner = (r - shape.width)**2 if shape.class_id == RING else -1.0
        return (dist2 <= r * r) & (dist2 > inner)
    cos, sin = np.float32(np.cos(shape.angle)), np.float32(np.sin(shape.angle))
    u, v = x * cos + y * sin, y * cos - x * sin
    if shape.class_id == SQUARE:
        return np.maximum(np.abs(u), np.abs(v)) <= r / np.sqrt(2)
    if shape.class_id == TRIANGLE:
        # Equilateral: inside the three edges, whose outward normals are 120 degrees apart and whose
        # distance from the centre (the inradius) is half the circumradius.
        inside = np.ones((size, size), bool)
        for normal in (np.pi / 2, np.pi / 2 + 2 * np.pi / 3, np.pi / 2 + 4 * np.pi / 3):
            inside &= u * np.float32(np.cos(normal)) + v * np.float32(np.sin(normal)) <= r / 2
        return inside
    if shape.class_id == CROSS:
        au, av = np.abs(u), np.abs(v)
        return ((au <= r) & (av <= half_width)) | ((av <= r) & (au <= half_width))
    raise ValueError(f'unknown class id {shape.class_id}')


def sample_shape(rng: np.random.Generator, size: int) -> Shape:
    """A random shape of a uniformly drawn class, sized for an S px scene.

    Args:
        rng: random generator (consumed).
        size: S; extents and part widths scale with S / 128.

    Returns:
        The shape; at S = 128 its extent is log-uniform in 24-80 px (``EXTENT_RANGE``), rings
        have bands of 6-10 px and crosses arms of 6-11 px (never under ``MIN_PART_WIDTH`` at any
        S), and a ring or cross is enlarged where needed to keep a hole or distinct arms.
    """
    scale = size / REFERENCE_SIZE
    class_id = int(rng.integers(1, len(CLASSES)))
    radius = float(np.exp(rng.uniform(*np.log(EXTENT_RANGE)))) * scale / 2
    angle = float(rng.uniform(0, 2 * np.pi))
    width = 0.0
    if class_id in (RING, CROSS):
        low, high = RING_WIDTH_RANGE if class_id == RING else CROSS_WIDTH_RANGE
        width = max(MIN_PART_WIDTH, float(rng.uniform(low, high)) * scale)
        # A ring keeps a hole wider than its band; a cross keeps arms longer than they are wide.
        radius = max(radius, (2.5 if class_id == RING else 2.0) * width)
    return Shape(class_id, radius, angle, width)


def visible_masks(full_masks: Sequence[np.ndarray]) -> List[np.ndarray]:
    """Visible part of each object when they are painted in order (later objects on top).

    Args:
        full_masks: K (S, S) bool masks in painting order.

    Returns:
        K (S, S) bool masks, pairwise disjoint, whose union is the union of ``full_masks``.
    """
    if not full_masks:
        return []
    covered = np.zeros_like(full_masks[0])
    visible = []
    for mask in reversed(full_masks):
        visible.append(mask & ~covered)
        covered |= mask
    return visible[::-1]


def _candidate_center(rng: np.random.Generator, shape: Shape, placed: Sequence[Tuple],
                      size: int) -> Tuple[float, float]:
    """Where to try the next object: anywhere, touching, or overlapping a placed object.

    Args:
        rng: random generator (consumed).
        shape: the object to place.
        placed: (shape, center, full mask) of the objects placed so far.
        size: S.

    Returns:
        (x, y) centre in px; the caller rejects unsuitable ones.
    """
    mode = rng.choice(3, p=(0.5, 0.25, 0.25)) if placed else 0
    if mode == 0:
        return tuple(rng.uniform(0, size, 2))
    other, (ox, oy), other_mask = placed[rng.integers(len(placed))]
    direction = rng.uniform(0, 2 * np.pi)
    step = np.array([np.cos(direction), np.sin(direction)])
    reach = other.radius + shape.radius + other.width + shape.width
    if mode == 2:
        return tuple(np.array([ox, oy]) + rng.uniform(0.3, 0.8) * reach * step)
    # Touching: walk in from outside until the shapes meet, then keep the last disjoint position,
    # which leaves a gap of at most one pixel. Walking inwards (not outwards from the centre) keeps
    # objects from settling into the hole of a ring without touching it.
    distance = reach + 1
    while distance > 0:
        center = (ox + (distance - 1) * step[0], oy + (distance - 1) * step[1])
        if (rasterize_shape(shape, center, size) & other_mask).any():
            break
        distance -= 1
    return (ox + distance * step[0], oy + distance * step[1])


def sample_layout(rng: np.random.Generator, size: int) -> List[Tuple[int, np.ndarray]]:
    """Objects of one scene in painting order, placed so that every one stays recognisable.

    A candidate is rejected when its centre is nearer than half its radius to the image border (so
    that at most about half of it is cut off), when it has fewer than ``MIN_VISIBLE_AREA`` pixels,
    or when it would leave an earlier object fewer than
    ``max(MIN_VISIBLE_AREA, MIN_VISIBLE_FRACTION * area)`` visible pixels. An object with no
    accepted candidate after ``PLACEMENT_TRIES`` is left out.

    Args:
        rng: random generator (consumed).
        size: S.

    Returns:
        Up to ``NUM_OBJECTS_RANGE[1]`` (class_id, full mask) pairs; masks are (S, S) bool, before occlusion.
    """
    placed = []
    visible = []
    for _ in range(int(rng.integers(NUM_OBJECTS_RANGE[0], NUM_OBJECTS_RANGE[1] + 1))):
        for _ in range(PLACEMENT_TRIES):
            shape = sample_shape(rng, size)
            cx, cy = _candidate_center(rng, shape, placed, size)
            margin = shape.radius / 2
            if not (margin <= cx <= size - 1 - margin and margin <= cy <= size - 1 - margin):
                continue
            mask = rasterize_shape(shape, (cx, cy), size)
            if mask.sum() < MIN_VISIBLE_AREA:
                continue
            now_visible = [seen & ~mask for seen in visible]
            if all(seen.sum() >= max(MIN_VISIBLE_AREA, MIN_VISIBLE_FRACTION * full.sum())
                   for seen, (_, _, full) in zip(now_visible, placed)):
                placed.append((shape, (cx, cy), mask))
                visible = now_visible + [mask]
                break
    return [(shape.class_id, mask) for shape, _, mask in placed]


def _random_colour(rng: np.random.Generator, low: float, high: float) -> np.ndarray:
    """(3,) float32 RGB, each channel uniform in [low, high)."""
    return rng.uniform(low, high, 3).astype(np.float32)


def textured_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Background of smooth colour blobs, a sinusoidal grating and pixel noise.

    Args:
        rng: random generator (consumed).
        size: S.

    Returns:
        (S, S, 3) float32 RGB, roughly in [0, 255] (not clipped).
    """
    scale = size / REFERENCE_SIZE
    cells = int(rng.integers(2, 9))
    blend = cv2.resize(rng.random((cells, cells), dtype=np.float32), (size, size),
                       interpolation=cv2.INTER_CUBIC)[..., None]
    # The texture varies around one dark base colour, so that the bright objects stand out as
    # regions while their class still has to be read from their shape.
    low = _random_colour(rng, *BACKGROUND_COLOURS)
    high = low + rng.uniform(-TEXTURE_SPREAD, TEXTURE_SPREAD, 3).astype(np.float32)
    image = low + np.clip(blend, 0, 1) * (high - low)
    # Stripes 3-12 px wide (half of a 6-24 px period) on a 128 px image: as thin as ring bands and
    # cross arms (6-11 px) and thinner, so thinness alone does not mark an object.
    period = rng.uniform(6, 24) * scale
    direction = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[:size, :size].astype(np.float32)
    phase = (xs * np.cos(direction) + ys * np.sin(direction)) * (2 * np.pi / period)
    grating = np.sin(phase + rng.uniform(0, 2 * np.pi)) * rng.uniform(TEXTURE_SPREAD / 2, TEXTURE_SPREAD)
    image += grating[..., None] * rng.uniform(-1, 1, 3).astype(np.float32)
    image += rng.normal(0, rng.uniform(*BACKGROUND_NOISE), image.shape).astype(np.float32)
    return image


def paint_objects(rng: np.random.Generator, canvas: np.ndarray,
                  layout: Sequence[Tuple[int, np.ndarray]]) -> np.ndarray:
    """Paint each object with its own colour, a linear shading and mild noise, in order.

    Args:
        rng: random generator (consumed).
        canvas: (S, S, 3) float32 RGB background; painted in place.
        layout: (class_id, full mask) pairs in painting order; masks are (S, S) bool.

    Returns:
        ``canvas``.
    """
    size = canvas.shape[0]
    ys, xs = np.mgrid[:size, :size].astype(np.float32) / size
    for _, mask in layout:
        under = canvas[mask].mean(axis=0)
        for _ in range(20):
            colour = _random_colour(rng, *OBJECT_COLOURS)
            if np.linalg.norm(colour - under) >= MIN_CONTRAST:
                break
        direction = rng.uniform(0, 2 * np.pi)
        shading = 1 + rng.uniform(0, 0.4) * (xs * np.cos(direction) + ys * np.sin(direction) - 0.5)
        texture = colour * shading[..., None] + rng.normal(0, rng.uniform(*OBJECT_NOISE), canvas.shape)
        canvas[mask] = texture[mask]
    return canvas


def render_scene(rng: np.random.Generator,
                 size: int = 128) -> Tuple[np.ndarray, np.ndarray, List[Tuple[int, np.ndarray]]]:
    """One synthetic scene with exact semantic and instance labels.

    Args:
        rng: random generator (consumed); a dataset's images use one generator each (see
            :func:`mmext.datasets.dataset_folder.render_dataset_scene`).
        size: S.

    Returns:
        image: (S, S, 3) uint8 RGB, lightly blurred and noised after painting.
        semantic: (S, S) uint8 label ids, the top-most object's class or 0 (background).
        instances: (class_id, mask) per object in painting order; masks are (S, S) bool, hold only
            the visible pixels, are pairwise disjoint and cover exactly the non-background pixels.
    """
    layout = sample_layout(rng, size)
    canvas = paint_objects(rng, textured_background(rng, size), layout)
    canvas = cv2.GaussianBlur(canvas, (0, 0), rng.uniform(0.3, 0.8))
    canvas += rng.normal(0, 2, canvas.shape).astype(np.float32)
    image = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
    semantic = np.zeros((size, size), np.uint8)
    for class_id, mask in layout:
        semantic[mask] = class_id
    instances = [(class_id, mask) for (class_id, _), mask in
                 zip(layout, visible_masks([mask for _, mask in layout]))]
    return image, semantic, instances

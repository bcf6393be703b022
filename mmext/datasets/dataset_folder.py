"""Dataset folders of synthetic shape scenes: writing them, and installing each one once, atomically.

:func:`write_dataset` writes the standard layouts that stock dataset classes read::

    <data_root>/img_dir/{train,val}/00000.png           RGB images
    <data_root>/ann_dir/{train,val}/00000.png           uint8 label ids (0 = background)
    <data_root>/annotations/instances_{train,val}.json  COCO instances, RLE masks, category ids 1..5
    <data_root>/meta.json                               generator version and parameters

and :func:`ensure_synthetic_shapes` does so once per folder, safely under concurrent callers (every
rank of a distributed run calls it). A folder holds one parameter set: asking it for another is an
error, never a silent replacement (see :func:`ensure_synthetic_shapes`).
"""
import json
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import List, Optional, Tuple

import cv2
import numpy as np
from pycocotools import mask as mask_util
from tqdm import tqdm

from .shape_scenes import CLASSES, render_scene

# Bump whenever the rendered output changes, so existing folders are regenerated.
GENERATOR_VERSION = 8
DEFAULT_DATA_ROOT = 'data/synthetic_shapes'
SPLITS = ('train', 'val')


def render_dataset_scene(seed: int, split_index: int, index: int,
                         size: int) -> Tuple[np.ndarray, np.ndarray, List[Tuple[int, np.ndarray]]]:
    """The scene that a dataset folder stores as image ``index`` of split ``split_index``.

    It is drawn from ``np.random.default_rng([seed, split_index, index])``, so it depends on nothing
    but its own key (not on the split sizes).

    Args:
        seed: dataset seed.
        split_index: 0 for train, 1 for val (the order of ``SPLITS``).
        index: image index within the split.
        size: S.

    Returns:
        What :func:`mmext.datasets.shape_scenes.render_scene` returns.
    """
    return render_scene(np.random.default_rng([seed, split_index, index]), size)


def coco_annotation(mask: np.ndarray, class_id: int, image_id: int, ann_id: int) -> dict:
    """COCO instance annotation of one visible mask.

    Args:
        mask: (S, S) bool, non-empty.
        class_id: label id in 1..5, used as the COCO category id.
        image_id, ann_id: COCO ids.

    Returns:
        Dict with ``bbox`` [x, y, w, h] in px tight around the mask (a one-pixel mask has
        w = h = 1), ``area`` the pixel count and ``segmentation`` the compressed RLE with ``counts``
        as str.
    """
    ys, xs = np.nonzero(mask)
    x0, y0 = int(xs.min()), int(ys.min())
    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle['counts'] = rle['counts'].decode('ascii')
    return dict(id=ann_id, image_id=image_id, category_id=class_id,
                bbox=[x0, y0, int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1],
                area=int(mask.sum()), segmentation=rle, iscrowd=0)


def write_dataset(data_root, seed: int = 0, num_train: int = 200, num_val: int = 50,
                  size: int = 128, progress: bool = True) -> Path:
    """Render both splits and write them in the mmseg and COCO layouts (see the module docstring).

    Image ``i`` of split ``s`` is :func:`render_dataset_scene` ``(seed, s, i, size)``. ``meta.json``
    is written last: a folder without it is incomplete.

    Args:
        data_root: folder to write into (created if missing).
        seed: dataset seed.
        num_train, num_val: images per split.
        size: S.
        progress: show a tqdm progress bar.

    Returns:
        ``data_root`` as a Path.
    """
    root = Path(data_root)
    categories = [dict(id=i, name=name) for i, name in enumerate(CLASSES) if i > 0]
    with tqdm(total=num_train + num_val, desc=f'synthetic shapes (seed {seed}, {size} px)',
              disable=not progress) as bar:
        for split_index, (split, count) in enumerate(zip(SPLITS, (num_train, num_val))):
            img_dir, ann_dir = root / 'img_dir' / split, root / 'ann_dir' / split
            img_dir.mkdir(parents=True, exist_ok=True)
            ann_dir.mkdir(parents=True, exist_ok=True)
            images, annotations = [], []
            for index in range(count):
                image, semantic, instances = render_dataset_scene(seed, split_index, index, size)
                file_name = f'{index:05d}.png'
                # cv2 writes BGR.
                cv2.imwrite(str(img_dir / file_name), image[..., ::-1])
                cv2.imwrite(str(ann_dir / file_name), semantic)
                images.append(dict(id=index + 1, file_name=file_name, width=size, height=size))
                for class_id, mask in instances:
                    annotations.append(
                        coco_annotation(mask, class_id, index + 1, len(annotations) + 1))
                bar.update()
            (root / 'annotations').mkdir(exist_ok=True)
            coco = dict(info=dict(description='mmext synthetic shapes', version=GENERATOR_VERSION),
                        images=images, annotations=annotations, categories=categories)
            (root / 'annotations' / f'instances_{split}.json').write_text(json.dumps(coco))
    meta = dict(dataset_parameters(seed, num_train, num_val, size), classes=list(CLASSES))
    (root / 'meta.json').write_text(json.dumps(meta, indent=2))
    return root


def dataset_parameters(seed: int, num_train: int, num_val: int, size: int) -> dict:
    """What decides a folder's content, as ``meta.json`` records it."""
    return dict(generator_version=GENERATOR_VERSION, seed=seed, num_train=num_train,
                num_val=num_val, size=size)


def _installed_parameters(data_root) -> Optional[dict]:
    """The parameters of the complete dataset in ``data_root``, or None where there is none.

    Returns:
        The keys of :func:`dataset_parameters` as ``meta.json`` records them (None for a key it
        lacks), or None when ``meta.json`` is missing or unreadable (an empty or partial folder).
    """
    try:
        meta = json.loads((Path(data_root) / 'meta.json').read_text())
    except (OSError, ValueError):
        return None
    return {key: meta.get(key) for key in dataset_parameters(0, 0, 0, 0)}


def _describe(parameters: dict) -> str:
    """``seed=0, num_train=200, num_val=50, size=128``: the parameters a user chooses."""
    return ', '.join(f'{key}={value}' for key, value in parameters.items()
                     if key != 'generator_version')


def _is_installed(root: Path, parameters: dict) -> bool:
    """Whether ``root`` holds the complete dataset of ``parameters``.

    Raises:
        FileExistsError: ``root`` holds this generator version's dataset of other parameters. Such
            a folder is refused rather than replaced, because another config (say, a test's tiny
            set over ``make train``'s) would otherwise swap the data under every other user of the
            folder. A folder of another generator version is no dataset this code can produce, so
            it is replaced: that is what the version is for.
    """
    installed = _installed_parameters(root)
    if installed == parameters:
        return True
    if installed is not None and installed['generator_version'] == GENERATOR_VERSION:
        raise FileExistsError(
            f'{root} holds the synthetic shapes dataset of {_describe(installed)}, not of '
            f'{_describe(parameters)}; refusing to replace it. Give each parameter set its own '
            'data_root, or replace this one on purpose with force=True '
            '(tools/generate_synthetic_shapes.py --force).')
    return False


# Every file that write_dataset writes, relative to data_root.
_WRITTEN_FILE = re.compile(r'(img_dir|ann_dir)/(train|val)/\d{5,}\.png'
                           r'|annotations/instances_(train|val)\.json|meta\.json')


def _discard(root: Path) -> None:
    """Remove an outdated or partial dataset folder, refusing any folder that holds other files.

    The folder is first renamed aside, so that it is never seen half deleted.
    """
    if not all(_WRITTEN_FILE.fullmatch(path.relative_to(root).as_posix())
               for path in root.rglob('*') if not path.is_dir()):
        # A mistyped data_root must never cost a user their files.
        raise FileExistsError(f'{root} holds files that synthetic shapes did not write; '
                              'choose another data_root')
    trash = root.with_name(f'.{root.name}.stale-{uuid.uuid4().hex}')
    try:
        os.rename(root, trash)
    except FileNotFoundError:  # a concurrent caller moved it first
        return
    shutil.rmtree(trash, ignore_errors=True)


def ensure_synthetic_shapes(data_root=DEFAULT_DATA_ROOT, seed: int = 0, num_train: int = 200,
                            num_val: int = 50, size: int = 128, force: bool = False) -> Path:
    """Make sure ``data_root`` holds the synthetic shapes dataset for these parameters.

    Returns at once when ``meta.json`` matches. A folder holding this generator's dataset of other
    parameters is refused (FileExistsError naming both parameter sets and the folder, the folder
    left as it was) unless ``force``. Otherwise the data are written into a temporary sibling
    folder and renamed into place, so that readers only ever see complete folders and concurrent
    callers (e.g. the ranks of a distributed run) neither collide nor corrupt each other; a partial
    folder or one of another generator version is replaced, a folder holding anything else is
    refused.

    Args:
        data_root: dataset folder.
        seed, num_train, num_val, size: see :func:`write_dataset`.
        force: regenerate even when the existing folder matches or holds other parameters.

    Returns:
        ``data_root`` as a Path.
    """
    root = Path(data_root)
    parameters = dataset_parameters(seed, num_train, num_val, size)
    if not force and _is_installed(root, parameters):
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    # Not tempfile.mkdtemp: its mode 0700 would survive the rename and hide the data from others.
    staging = root.with_name(f'.{root.name}.tmp-{uuid.uuid4().hex}')
    staging.mkdir()
    try:
        write_dataset(staging, seed, num_train, num_val, size)
        while True:
            try:
                # Atomic; fails while a non-empty folder sits at root.
                os.rename(staging, root)
                return root
            except OSError:
                if not root.exists():
                    raise
            # A concurrent caller may have installed a folder since the check above.
            if not force and _is_installed(root, parameters):
                return root
            _discard(root)
            force = False  # what existed before this call is gone; keep what others install now
    finally:
        shutil.rmtree(staging, ignore_errors=True)

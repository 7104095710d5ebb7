"""Procedural one-shot detection datasets (no download needed).

Two modes, both COCO format, 160 px images on cluttered backgrounds of muted
noise, lines and blobs:

``mode='shape'`` (the quickstart's default): **colour carries no class
information.** 32 classes = 8 outlines x 4 inner patterns (solid, outline,
halved, dotted); every instance gets a random saturated colour, and in half
of the images all objects share a two-colour palette. Every image holds, on
top of its 2-4 drawn classes, a *look-alike*: a class with the same outline
or the same pattern as one of them, drawn in the same colour as it. A
detector can only score above the query-blind level by comparing the
query's shape with the target's objects. Class (outline ``i``, pattern
``j``) is unseen iff ``(i + j) % 4 == 0``:
every unseen class is a new combination of an outline and a pattern that
both occur among the seen classes (8 unseen, 24 seen). The *train* images
of this mode draw seen classes only (``train_classes='seen'``): an unseen
object never appears in a training target, neither as a positive nor as
an unlabelled negative (see ``generate_synthetic_dataset``).

``mode='colour'`` (the original data): 64 classes = 8 shapes x 8 colours,
drawn filled in their class colour; colour alone tells most classes apart.
Class (shape ``i``, colour ``j``) is unseen iff ``(i + j) % 4 == 0``.

Used by the quickstart (``tools/quickstart.sh``) and the tests::

    from oneshot.datasets.synthetic import generate_synthetic_dataset
    generate_synthetic_dataset('data/synthetic', num_train=2000, num_val=300)
    generate_synthetic_dataset('data/synthetic-colour', mode='colour')
"""
import json
import os
import os.path as osp
from collections import deque
from typing import Callable, Deque, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

SHAPES: Tuple[str, ...] = ('circle', 'square', 'triangle', 'diamond', 'star',
                           'cross', 'ring', 'hexagon')
# BGR, saturated so they stand out from the muted background.
COLORS: Dict[str, Tuple[int, int, int]] = {
    'red': (40, 40, 220),
    'green': (40, 200, 40),
    'blue': (220, 60, 30),
    'yellow': (30, 220, 230),
    'magenta': (200, 40, 210),
    'cyan': (220, 210, 40),
    'orange': (20, 140, 255),
    'purple': (150, 30, 110),
}
SYNTHETIC_CLASSES: List[str] = [
    f'{color}-{shape}' for shape in SHAPES for color in COLORS
]
"""The 64 classes of ``mode='colour'`` (``<colour>-<shape>``)."""

OUTLINES: Tuple[str, ...] = ('circle', 'square', 'triangle', 'diamond',
                             'star', 'cross', 'hexagon', 'arrow')
PATTERNS: Tuple[str, ...] = ('solid', 'outline', 'halved', 'dotted')
SHAPE_CLASSES: List[str] = [
    f'{outline}-{pattern}' for outline in OUTLINES for pattern in PATTERNS
]
"""The 32 classes of ``mode='shape'`` (``<outline>-<pattern>``)."""

MODES: Tuple[str, ...] = ('shape', 'colour')
# Bumped whenever the pictures or annotations for a given seed change, so
# that ``skip_existing`` regenerates data written by an older generator.
GENERATOR_VERSION = 7
TRAIN_CLASSES: Tuple[str, ...] = ('seen', 'all')


def synthetic_classes(mode: str = 'shape') -> List[str]:
    """All class names of ``mode`` in category-id order."""
    _check_mode(mode)
    return list(SHAPE_CLASSES if mode == 'shape' else SYNTHETIC_CLASSES)


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f'Unknown synthetic mode {mode!r}; use one of '
                         f'{list(MODES)}.')


def synthetic_split(mode: str = 'shape') -> Dict[str, List[str]]:
    """Seen and unseen class names.

    ``'shape'``: 24 seen, 8 unseen; every outline has one unseen pattern
    and every pattern two unseen outlines. ``'colour'``: 48 seen, 16
    unseen; every shape and every colour occurs in exactly two unseen
    classes and six seen ones. Either way every unseen class combines two
    parts that both occur in seen classes.

    Returns:
        dict: ``seen`` and ``unseen``, lists of names in
        :func:`synthetic_classes` order.
    """
    _check_mode(mode)
    if mode == 'shape':
        unseen = [
            f'{outline}-{pattern}' for i, outline in enumerate(OUTLINES)
            for j, pattern in enumerate(PATTERNS) if (i + j) % 4 == 0
        ]
    else:
        unseen = [
            f'{color}-{shape}' for i, shape in enumerate(SHAPES)
            for j, color in enumerate(COLORS) if (i + j) % 4 == 0
        ]
    seen = [c for c in synthetic_classes(mode) if c not in set(unseen)]
    return dict(seen=seen, unseen=unseen)


def _polygon(shape: str, rng: np.random.Generator) -> np.ndarray:
    """Unit-size outline of ``shape`` centred at 0 (points in [-1, 1])."""
    if shape == 'square':
        pts = [(-1, -1), (1, -1), (1, 1), (-1, 1)]
    elif shape == 'triangle':
        pts = [(0, -1), (1, 0.85), (-1, 0.85)]
    elif shape == 'diamond':
        pts = [(0, -1), (0.7, 0), (0, 1), (-0.7, 0)]
    elif shape == 'hexagon':
        a = np.arange(6) * np.pi / 3
        pts = list(zip(np.cos(a), np.sin(a)))
    elif shape == 'star':
        a = np.arange(10) * np.pi / 5 - np.pi / 2
        r = np.where(np.arange(10) % 2 == 0, 1.0, 0.42)
        pts = list(zip(r * np.cos(a), r * np.sin(a)))
    elif shape == 'cross':
        t = 0.33
        pts = [(-t, -1), (t, -1), (t, -t), (1, -t), (1, t), (t, t), (t, 1),
               (-t, 1), (-t, t), (-1, t), (-1, -t), (-t, -t)]
    elif shape == 'arrow':  # pointing up: a head on a wide shaft
        pts = [(0, -1), (1, 0), (0.4, 0), (0.4, 1), (-0.4, 1), (-0.4, 0),
               (-1, 0)]
    else:
        raise ValueError(shape)
    return np.asarray(pts, dtype=np.float64)


def _draw_object(img: np.ndarray, mask: np.ndarray, shape: str,
                 color: Tuple[int, int, int], cx: float, cy: float,
                 size: float, rng: np.random.Generator) -> None:
    """Draw one object into ``img`` and its footprint into ``mask``."""
    jitter = rng.integers(-25, 26, size=3)
    col = tuple(int(np.clip(c + j, 0, 255)) for c, j in zip(color, jitter))
    aspect = rng.uniform(0.8, 1.25)
    sx, sy = size / 2 * aspect, size / 2 / aspect
    mask[:] = 0
    if shape in ('circle', 'ring'):
        axes = (max(2, int(sx)), max(2, int(sy)))
        cv2.ellipse(mask, (int(cx), int(cy)), axes, 0, 0, 360, 255, -1)
        if shape == 'ring':
            inner = (max(1, int(axes[0] * 0.5)), max(1, int(axes[1] * 0.5)))
            cv2.ellipse(mask, (int(cx), int(cy)), inner, 0, 0, 360, 0, -1)
    else:
        pts = _polygon(shape, rng) * (sx, sy)
        theta = rng.uniform(-0.5, 0.5)
        rot = np.array([[np.cos(theta), -np.sin(theta)],
                        [np.sin(theta), np.cos(theta)]])
        pts = pts @ rot.T + (cx, cy)
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 255)
    img[mask > 0] = col


def _random_colour(rng: np.random.Generator) -> Tuple[int, int, int]:
    """A saturated BGR colour of uniformly random hue."""
    hsv = np.array([[[rng.integers(0, 180), rng.integers(150, 256),
                      rng.integers(150, 256)]]], np.uint8)
    return tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])


def _draw_shape_object(img: np.ndarray, mask: np.ndarray, outline: str,
                       pattern: str, color: Tuple[int, int, int], cx: float,
                       cy: float, size: float,
                       rng: np.random.Generator) -> None:
    """Draw one ``mode='shape'`` object (``outline`` with an inner
    ``pattern`` cut out of it) into ``img`` and its footprint into
    ``mask``. The cut-outs show the background through the object."""
    aspect = rng.uniform(0.85, 1.18)
    sx, sy = size / 2 * aspect, size / 2 / aspect
    theta = rng.uniform(-0.35, 0.35)
    rot = np.array([[np.cos(theta), -np.sin(theta)],
                    [np.sin(theta), np.cos(theta)]])

    def to_image(pts: np.ndarray) -> np.ndarray:
        return np.round((pts * (sx, sy)) @ rot.T + (cx, cy)).astype(np.int32)

    def fill(pts: np.ndarray, value: int) -> None:
        cv2.fillPoly(mask, [to_image(pts)], value)

    mask[:] = 0
    if outline == 'circle':
        ring = np.stack([np.cos(np.linspace(0, 2 * np.pi, 48,
                                            endpoint=False)),
                         np.sin(np.linspace(0, 2 * np.pi, 48,
                                            endpoint=False))], 1)
        base = ring
    else:
        base = _polygon(outline, rng)
        ring = None
    fill(base, 255)
    if pattern == 'outline':
        # The same outline at half size, centred on the shape's centroid.
        centre = base.mean(0)
        fill((base - centre) * 0.5 + centre, 0)
    elif pattern == 'halved':
        band = np.array([(-1.2, -0.17), (1.2, -0.17), (1.2, 0.17),
                         (-1.2, 0.17)])
        fill(band + (0, base[:, 1].mean() * 0.5), 0)
    elif pattern == 'dotted':
        if ring is None:
            ring = np.stack([np.cos(np.linspace(0, 2 * np.pi, 24,
                                                endpoint=False)),
                             np.sin(np.linspace(0, 2 * np.pi, 24,
                                                endpoint=False))], 1)
        fill(ring * 0.2 + base.mean(0) * 0.5, 0)
    elif pattern != 'solid':
        raise ValueError(pattern)
    img[mask > 0] = color


def _background(size: int, rng: np.random.Generator) -> np.ndarray:
    """Muted clutter: a grey gradient, noise, lines and blobs."""
    base = rng.uniform(70, 170)
    grad = np.linspace(-25, 25, size)[None, :] * rng.choice([-1, 1])
    img = np.clip(base + grad + rng.normal(0, 10, (size, size)), 0, 255)
    img = np.repeat(img[..., None], 3, axis=2)
    img += rng.normal(0, 6, 3)  # slight colour cast
    img = img.astype(np.uint8)
    for _ in range(rng.integers(4, 10)):
        grey = int(rng.uniform(40, 210))
        tint = rng.integers(-20, 21, size=3)
        col = tuple(int(np.clip(grey + t, 0, 255)) for t in tint)
        if rng.random() < 0.5:
            p1 = tuple(int(v) for v in rng.integers(0, size, 2))
            p2 = tuple(int(v) for v in rng.integers(0, size, 2))
            cv2.line(img, p1, p2, col, int(rng.integers(1, 4)))
        else:
            c = tuple(int(v) for v in rng.integers(0, size, 2))
            cv2.circle(img, c, int(rng.integers(3, size // 8)), col, -1)
    return img


def _random_picker(pool: List[int],
                   rng: np.random.Generator) -> Callable[[int], List[int]]:
    """``pick(n)``: ``n`` distinct classes of ``pool``, uniformly at random."""
    return lambda n: [int(c) for c in rng.choice(pool, n, replace=False)]


def _take_distinct(queue: Deque[int], n: int, pool: Sequence[int],
                   rng: np.random.Generator) -> List[int]:
    """Pop the first ``n`` distinct classes of ``queue`` (``n <= len(pool)``),
    appending a shuffled copy of ``pool`` when the queue runs short."""
    if len(queue) < n:
        queue.extend(int(c) for c in rng.permutation(pool))
    chosen: List[int] = []
    skipped: List[int] = []
    while len(chosen) < n:
        # A class left over from the previous shuffle may come up twice;
        # keep the second copy, in order, for the next call.
        c = queue.popleft()
        (skipped if c in chosen else chosen).append(c)
    queue.extendleft(reversed(skipped))
    return chosen


def _balanced_picker(pool: List[int], rng: np.random.Generator,
                     group_size: int = 8,
                     images_per_group: int = 8) -> Callable[[int], List[int]]:
    """``pick(n)``: ``n`` distinct classes such that every class of ``pool``
    gets about the same number of images, and does so in runs.

    Classes are taken ``group_size`` at a time from shuffled copies of
    ``pool``; the next ``images_per_group`` images draw their classes in
    turn from that group only, so each class of the group lands in 2-4 of
    them (images hold 2-4 classes). One-shot episodes need a class in at
    least two images (the query comes from another image than the target),
    so even a val split of 8 images has episodes; ``len(pool) /
    group_size * images_per_group`` images (64 for all classes) hold every
    class. Used for the val split: a class's AP50 is only meaningful if the
    class has a fair number of images, which uniform sampling does not
    guarantee for a few hundred images and 64 classes.
    """
    group_size = min(group_size, len(pool))
    order: Deque[int] = deque()  # classes not yet given a group
    in_group: Deque[int] = deque()  # turn order within the group
    state = dict(group=[], left=0)

    def pick(n: int) -> List[int]:
        if state['left'] == 0:
            state['group'] = _take_distinct(order, group_size, pool, rng)
            state['left'] = images_per_group
            in_group.clear()
        state['left'] -= 1
        return _take_distinct(in_group, min(n, group_size), state['group'],
                              rng)

    return pick


def _look_alike(classes: List[int], pool: List[int],
                rng: np.random.Generator) -> Optional[int]:
    """A ``mode='shape'`` class of ``pool`` not in ``classes`` that shares
    the outline or the pattern of one of them (None if there is none)."""
    chosen = set(classes)
    anchor = SHAPE_CLASSES[classes[int(rng.integers(len(classes)))]]
    outline, pattern = anchor.split('-')
    candidates = [c for c in pool if c not in chosen and (
        SHAPE_CLASSES[c].split('-')[0] == outline
        or SHAPE_CLASSES[c].split('-')[1] == pattern)]
    if not candidates:
        return None
    return int(candidates[int(rng.integers(len(candidates)))])


def _render_image(size: int, rng: np.random.Generator, min_obj: int,
                  max_obj: int, pool: List[int],
                  pick: Callable[[int], List[int]], mode: str = 'colour'
                  ) -> Tuple[np.ndarray, list]:
    """One image and its objects ``[(class_index, [x, y, w, h], area)]``
    of 2-4 classes of ``pool`` chosen by ``pick(n)`` (``mode='shape'``:
    plus one look-alike class)."""
    img = _background(size, rng)
    classes = pick(min(len(pool), int(rng.integers(2, 5))))
    palette = None
    pair_colour: Dict[int, Tuple[int, int, int]] = {}
    if mode == 'shape':
        extra = _look_alike(classes, pool, rng)
        if extra is not None:
            # The look-alike and the class it resembles share one colour
            # in this image, so neither colour nor the outline or pattern
            # alone tells them apart.
            anchor = next(c for c in classes if set(
                SHAPE_CLASSES[c].split('-')) & set(
                SHAPE_CLASSES[extra].split('-')))
            pair_colour[anchor] = pair_colour[extra] = _random_colour(rng)
            # Placed first, so that crowding never drops one of the pair.
            classes = [anchor, extra] + [c for c in classes if c != anchor]
        if rng.random() < 0.5:  # every other object in one of two colours
            palette = [_random_colour(rng), _random_colour(rng)]
    placed: List[Tuple[float, float, float]] = []
    objects = []
    mask = np.zeros((size, size), np.uint8)
    for cls in classes:
        copies = 1 + int(rng.random() < 0.3) + int(rng.random() < 0.1)
        for _ in range(copies):
            for _try in range(20):
                obj = rng.uniform(min_obj, max_obj)
                cx, cy = rng.uniform(obj / 2 + 1, size - obj / 2 - 1, 2)
                # No overlap: objects stay fully visible.
                if all(abs(cx - px) > (obj + po) / 2 + 2
                       or abs(cy - py) > (obj + po) / 2 + 2
                       for px, py, po in placed):
                    break
            else:
                continue
            placed.append((cx, cy, obj))
            if mode == 'shape':
                outline, pattern = SHAPE_CLASSES[cls].split('-')
                color = (pair_colour[cls] if cls in pair_colour else
                         palette[int(rng.integers(2))] if palette
                         else _random_colour(rng))
                _draw_shape_object(img, mask, outline, pattern, color, cx,
                                   cy, obj, rng)
            else:
                shape_name, color_name = \
                    SYNTHETIC_CLASSES[cls].split('-')[::-1]
                _draw_object(img, mask, shape_name, COLORS[color_name], cx,
                             cy, obj, rng)
            ys, xs = np.nonzero(mask)
            x1, y1, x2, y2 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
            objects.append((int(cls), [int(x1), int(y1), int(x2 - x1),
                                       int(y2 - y1)], int(len(xs))))
    return img, objects


def _write_coco_split(out_dir: str, name: str, num_images: int, size: int,
                      render: Callable[[], Tuple[np.ndarray, list]],
                      description: str, params: dict,
                      categories: List[dict]) -> str:
    """Write ``num_images`` images drawn by ``render()`` (an image and its
    objects ``[(class_index, [x, y, w, h], area)]``) into ``out_dir/name/``
    and their COCO json into ``out_dir/annotations/name.json``; returns the
    json path. Shared by the synthetic and the glyph generators."""
    img_dir = osp.join(out_dir, name)
    os.makedirs(img_dir, exist_ok=True)
    images, annotations = [], []
    for i in range(num_images):
        img, objects = render()
        file_name = f'{i:06d}.png'
        cv2.imwrite(osp.join(img_dir, file_name), img)
        img_id = i + 1
        images.append(dict(id=img_id, file_name=file_name, width=size,
                           height=size))
        for cls, bbox, area in objects:
            annotations.append(dict(
                id=len(annotations) + 1, image_id=img_id,
                category_id=cls + 1, bbox=bbox, area=area, iscrowd=0))
    ann_file = osp.join(out_dir, 'annotations', f'{name}.json')
    with open(ann_file, 'w') as f:
        json.dump(dict(info=dict(description=description, **params),
                       images=images, annotations=annotations,
                       categories=categories), f)
    return ann_file


def _write_split(out_dir: str, name: str, num_images: int, size: int,
                 rng: np.random.Generator, params: dict, pool: List[int],
                 balanced: bool, mode: str) -> str:
    """Render ``num_images`` images into ``out_dir/name/`` and write
    ``out_dir/annotations/name.json``; returns the json path."""
    pick = (_balanced_picker if balanced else _random_picker)(pool, rng)
    if mode == 'shape':  # patterns need a few pixels to show
        min_obj, max_obj = max(16, size // 8), max(24, size // 3)
    else:
        min_obj, max_obj = max(12, size // 9), max(16, size // 3)
    description = ('oneshot synthetic shapes, colour carries no class'
                   if mode == 'shape' else 'oneshot synthetic shapes')
    return _write_coco_split(
        out_dir, name, num_images, size,
        lambda: _render_image(size, rng, min_obj, max_obj, pool, pick, mode),
        description, params,
        [dict(id=i + 1, name=n, supercategory='shape')
         for i, n in enumerate(synthetic_classes(mode))])


def train_class_pool(pool: List[int], names: Sequence[str],
                     seen: Sequence[str], train_classes: str) -> List[int]:
    """The classes (indices into ``names``) the train images draw:
    ``pool``, or with ``train_classes='seen'`` its ``seen`` classes.
    Shared by the synthetic and the glyph generators.

    Raises:
        ValueError: ``train_classes`` is not ``'seen'`` or ``'all'``, or
            fewer than 2 classes are left (images hold 2-4 classes).
    """
    if train_classes not in TRAIN_CLASSES:
        raise ValueError(f'train_classes must be one of {TRAIN_CLASSES}, '
                         f'got {train_classes!r}.')
    if train_classes == 'all':
        return list(pool)
    seen_set = set(seen)
    out = [c for c in pool if names[c] in seen_set]
    if len(out) < 2:
        raise ValueError(
            f"train_classes='seen' leaves {len(out)} seen class(es) of "
            f"{[names[c] for c in pool][:8]} for the train images (they "
            f"hold 2-4 classes); name at least 2 seen classes or pass "
            f"train_classes='all'.")
    return out


def generate_synthetic_dataset(out_dir: str,
                               num_train: int = 2000,
                               num_val: int = 300,
                               image_size: int = 160,
                               seed: int = 0,
                               skip_existing: bool = True,
                               classes: Optional[Sequence[str]] = None,
                               mode: str = 'shape',
                               train_classes: Optional[str] = None
                               ) -> Dict[str, str]:
    """Write a synthetic dataset in COCO format.

    Layout: ``out_dir/{train,val}/*.png`` (``000000.png``, ...) and
    ``out_dir/annotations/{train,val}.json``; image ids start at 1,
    category ids ``1..N`` follow :func:`synthetic_classes` of ``mode``.
    Every drawn object is annotated (``bbox`` xywh tight around its
    pixels, ``area`` its pixel count, ``iscrowd`` 0); which classes are seen
    or unseen is the dataset's business (:func:`synthetic_split`). Val
    images take their classes in turn from groups of 8 classes, 8 images
    per group (see ``_balanced_picker``), so every class has about the same
    number of val images, and even 8 val images give one-shot episodes
    (``mode='shape'`` adds a random look-alike class to each image on top).
    Deterministic in ``seed`` (local ``numpy.random.Generator`` s; global
    RNGs are untouched).

    Args:
        out_dir (str): Dataset root.
        num_train (int): Training images (>= 0).
        num_val (int): Validation/test images (>= 0).
        image_size (int): Side of the square images (>= 64); objects are
            about ``image_size / 9`` (``/ 8`` in shape mode) to
            ``image_size / 3`` pixels wide.
        seed (int): Generation seed (the val split uses ``seed + 1``).
        skip_existing (bool): Keep an existing dataset whose jsons record
            the same parameters (in ``info``) and whose images exist,
            instead of writing it again.
        classes (Sequence[str], optional): Draw only these classes (the json
            still lists all categories of the mode). Defaults to all.
        mode (str): ``'shape'`` (colour carries no class information) or
            ``'colour'`` (class = shape x colour). Defaults to ``'shape'``.
        train_classes (str, optional): ``'seen'``: the train images draw
            only the seen classes of :func:`synthetic_split` (of the
            ``classes`` pool), so no unseen object is ever in a training
            target; ``'all'``: they draw every class, as the val images
            always do. Defaults to ``'seen'`` in the shape mode (it lifts
            the unseen AP50 of the quickstart model, see
            docs/protocol.md) and ``'all'`` in the colour mode (the
            original data, unchanged).

    Returns:
        dict: ``train_ann``, ``val_ann`` (json paths), ``train_img_dir``,
        ``val_img_dir``.

    Raises:
        ValueError: A size, count or mode is out of range, or ``classes``
            names an unknown class or fewer than two classes.
    """
    _check_mode(mode)
    if train_classes is None:
        train_classes = 'seen' if mode == 'shape' else 'all'
    if num_train < 0 or num_val < 0:
        raise ValueError(f'num_train and num_val must be >= 0, got '
                         f'{num_train} and {num_val}.')
    if image_size < 64:
        raise ValueError(f'image_size must be >= 64 (objects are 1/9 to 1/3 '
                         f'of it), got {image_size}.')
    paths = dict(
        train_ann=osp.join(out_dir, 'annotations', 'train.json'),
        val_ann=osp.join(out_dir, 'annotations', 'val.json'),
        train_img_dir=osp.join(out_dir, 'train'),
        val_img_dir=osp.join(out_dir, 'val'))
    names = synthetic_classes(mode)
    if classes is None:
        pool = list(range(len(names)))
    else:
        unknown = [c for c in classes if c not in names]
        if unknown:
            parts = (f'"<outline>-<pattern>" with outlines {list(OUTLINES)} '
                     f'and patterns {list(PATTERNS)}' if mode == 'shape' else
                     f'"<colour>-<shape>" with colours {list(COLORS)} and '
                     f'shapes {list(SHAPES)}')
            raise ValueError(
                f'Unknown synthetic classes {unknown} for mode={mode!r}; '
                f'names are {parts}.')
        pool = sorted({names.index(c) for c in classes})
        if len(pool) < 2:
            raise ValueError(f'classes must name at least 2 distinct classes '
                             f'(images hold 2-4 classes), got {classes}.')
    train_pool = train_class_pool(pool, names, synthetic_split(mode)['seen'],
                                  train_classes)
    params = dict(version=GENERATOR_VERSION, mode=mode, num_train=num_train,
                  num_val=num_val, image_size=image_size, seed=seed,
                  classes=pool, train_classes=train_pool)
    if skip_existing and all(
            _is_complete(paths[f'{name}_ann'], paths[f'{name}_img_dir'],
                         params) for name in ('train', 'val')):
        return paths
    os.makedirs(osp.join(out_dir, 'annotations'), exist_ok=True)
    # Separate streams: the val images do not depend on num_train.
    _write_split(out_dir, 'train', num_train, image_size,
                 np.random.default_rng(seed), params, train_pool,
                 balanced=False,
                 mode=mode)
    _write_split(out_dir, 'val', num_val, image_size,
                 np.random.default_rng(seed + 1), params, pool,
                 balanced=True, mode=mode)
    return paths


def _is_complete(ann_file: str, img_dir: str, params: dict) -> bool:
    """Whether ``ann_file`` was written with ``params`` and its images are
    on disk (the json is written last, so an interrupted run has none)."""
    if not osp.isfile(ann_file):
        return False
    try:
        with open(ann_file) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return False
    info = data.get('info', {})
    if any(info.get(k) != v for k, v in params.items()):
        return False
    return all(
        osp.isfile(osp.join(img_dir, im['file_name']))
        for im in data.get('images', []))

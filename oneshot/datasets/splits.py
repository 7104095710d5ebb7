"""Seen/unseen class splits of the one-shot benchmarks.

COCO (the CoAE protocol, also used by AIT, BHRL and Siamese Mask R-CNN): in
split ``i`` (1..4) the class with zero-based index ``k`` in the standard
80-class order is unseen iff ``(k + 1) % 4 == i % 4``. PASCAL VOC: aeroplane,
cat, cow and sheep are unseen, the other 16 classes seen.
"""
from typing import Dict, Sequence, Tuple, Union

COCO_CLASSES: Tuple[str, ...] = (
    'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train',
    'truck', 'boat', 'traffic light', 'fire hydrant', 'stop sign',
    'parking meter', 'bench', 'bird', 'cat', 'dog', 'horse', 'sheep', 'cow',
    'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella', 'handbag',
    'tie', 'suitcase', 'frisbee', 'skis', 'snowboard', 'sports ball', 'kite',
    'baseball bat', 'baseball glove', 'skateboard', 'surfboard',
    'tennis racket', 'bottle', 'wine glass', 'cup', 'fork', 'knife', 'spoon',
    'bowl', 'banana', 'apple', 'sandwich', 'orange', 'broccoli', 'carrot',
    'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch', 'potted plant',
    'bed', 'dining table', 'toilet', 'tv', 'laptop', 'mouse', 'remote',
    'keyboard', 'cell phone', 'microwave', 'oven', 'toaster', 'sink',
    'refrigerator', 'book', 'clock', 'vase', 'scissors', 'teddy bear',
    'hair drier', 'toothbrush')

VOC_CLASSES: Tuple[str, ...] = (
    'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat',
    'chair', 'cow', 'diningtable', 'dog', 'horse', 'motorbike', 'person',
    'pottedplant', 'sheep', 'sofa', 'train', 'tvmonitor')

VOC_UNSEEN: Tuple[str, ...] = ('aeroplane', 'cat', 'cow', 'sheep')

SplitSpec = Union[str, Dict[str, Sequence[str]]]


def coco_split_classes(split: int) -> Tuple[Tuple[str, ...], Tuple[str, ...]]:
    """Seen and unseen COCO class names of split ``split`` (1..4).

    Args:
        split (int): The split number, 1 to 4.

    Returns:
        tuple: ``(seen, unseen)`` class names, each in COCO order.
    """
    if split not in (1, 2, 3, 4):
        raise ValueError(f'COCO one-shot splits are 1..4, got {split!r}')
    unseen = tuple(name for k, name in enumerate(COCO_CLASSES)
                   if (k + 1) % 4 == split % 4)
    seen = tuple(name for name in COCO_CLASSES if name not in unseen)
    return seen, unseen


def builtin_split(name: str) -> Tuple[Tuple[str, ...], Tuple[str, ...]]:
    """``(seen, unseen)`` of a built-in split: ``coco_split1`` ..
    ``coco_split4``, ``voc``, or one of the project's generated data sets:
    ``glyphs`` (:func:`oneshot.datasets.glyphs.glyph_split`),
    ``synthetic-shape`` and ``synthetic-colour``
    (:func:`oneshot.datasets.synthetic.synthetic_split`)."""
    if name == 'glyphs':
        from .glyphs import glyph_split
        split = glyph_split()
        return tuple(split['seen']), tuple(split['unseen'])
    if name in ('synthetic-shape', 'synthetic-colour'):
        from .synthetic import synthetic_split
        split = synthetic_split(name.split('-')[1])
        return tuple(split['seen']), tuple(split['unseen'])
    if name == 'voc':
        return (tuple(c for c in VOC_CLASSES if c not in VOC_UNSEEN),
                VOC_UNSEEN)
    if name in ('coco_split1', 'coco_split2', 'coco_split3', 'coco_split4'):
        return coco_split_classes(int(name[-1]))
    raise ValueError(
        f'Unknown built-in split {name!r}; use one of coco_split1, '
        'coco_split2, coco_split3, coco_split4, voc, glyphs, '
        "synthetic-shape, synthetic-colour, or give the classes as "
        "split=dict(seen=[...], unseen=[...]) (or dict(unseen=[...])).")


def resolve_split(
        split: SplitSpec, class_names: Sequence[str],
        source: str = 'the dataset'
) -> Tuple[Tuple[str, ...], Tuple[str, ...]]:
    """Turn a split spec into ``(seen, unseen)`` names of ``class_names``.

    Args:
        split (str | dict): A built-in name (``'coco_split1'`` ..
            ``'coco_split4'``, ``'voc'``, ``'glyphs'``, ...; see
            :func:`builtin_split`), or ``dict(seen=[...],
            unseen=[...])``, or ``dict(unseen=[...])`` (every other class is
            seen) for custom data.
        class_names (Sequence[str]): The dataset's classes (json order).
        source (str): What to name in error messages (e.g. the json path).

    Returns:
        tuple: ``(seen, unseen)``, each ordered as ``class_names``.

    Raises:
        ValueError: A named class is not among ``class_names``, a class is
            both seen and unseen, or the spec is malformed.
    """
    if isinstance(split, str):
        seen, unseen = builtin_split(split)
    elif isinstance(split, dict):
        extra = set(split) - {'seen', 'unseen'}
        if extra or 'unseen' not in split:
            raise ValueError(
                f'split must be a built-in name or dict(seen=[...], '
                f'unseen=[...]) / dict(unseen=[...]); got keys {sorted(split)}')
        unseen = tuple(split['unseen'])
        seen = tuple(split['seen']) if 'seen' in split else tuple(
            c for c in class_names if c not in set(unseen))
    else:
        raise TypeError(f'split must be a str or dict, got {type(split)}')

    known = set(class_names)
    missing = [c for c in (*seen, *unseen) if c not in known]
    if missing:
        raise ValueError(
            f'Split classes {missing} are not categories of {source}. '
            f'Its categories are: {list(class_names)}. Fix the names in the '
            'split (or choose the split that matches this annotation file).')
    both = sorted(set(seen) & set(unseen))
    if both:
        raise ValueError(f'Classes {both} are both seen and unseen.')
    order = {c: i for i, c in enumerate(class_names)}
    return (tuple(sorted(seen, key=order.__getitem__)),
            tuple(sorted(unseen, key=order.__getitem__)))

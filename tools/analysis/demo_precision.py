"""How many of the demo's confident detections are the query's class:
precision (and recall) of ``tools/demo.py``'s ``detections.json`` against a
COCO-format annotation file of the same targets.

    python tools/analysis/demo_precision.py DETECTIONS_JSON ANN_JSON \
        --class NAME [--score-thr 0.5] [--iou-thr 0.5]

Targets are matched to the json's images by file name. A detection scoring
>= ``--score-thr`` is correct if it overlaps (IoU >= ``--iou-thr``) a
not-yet-matched box of class NAME in its target; otherwise it is counted as
lying on another class's object (IoU >= ``--iou-thr`` with one) or
elsewhere. With several queries, ``--query`` picks the query by name
(default: the first).
"""
import argparse
import json
import os.path as osp
import sys
from typing import Dict, Optional

import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))

from oneshot.evaluation.error_analysis import box_iou  # noqa: E402


def demo_precision(detections: dict, coco: dict, class_name: str,
                   score_thr: float = 0.5, iou_thr: float = 0.5,
                   query: Optional[str] = None) -> Dict[str, float]:
    """Precision of one query's confident demo detections.

    Args:
        detections (dict): ``detections.json`` of ``tools/demo.py``.
        coco (dict): COCO-format annotations of the targets.
        class_name (str): The query's class in ``coco``.
        score_thr (float): Confidence threshold.
        iou_thr (float): IoU for a detection to lie on an object.
        query (str, optional): Query name; defaults to the first query.

    Returns:
        dict: ``detections`` (confident), ``correct``, ``other_class``,
        ``elsewhere``, ``precision``, ``recall`` (of the class's boxes in
        the targets), ``targets``, ``gt`` (boxes of the class) and
        ``confused_with`` (class name -> confident detections lying on an
        object of that class, the one they overlap most; most first).
    """
    names = {c['id']: c['name'] for c in coco['categories']}
    if class_name not in names.values():
        raise ValueError(f'Class {class_name!r} is not in the annotation '
                         f'file; its classes are {sorted(names.values())}.')
    query_names = [q['name'] for q in detections['queries']]
    q_idx = 0 if query is None else query_names.index(query) \
        if query in query_names else None
    if q_idx is None:
        raise ValueError(f'Query {query!r} is not in detections.json; its '
                         f'queries are {query_names}.')
    images = {im['file_name']: im['id'] for im in coco['images']}
    boxes: Dict[int, list] = {}
    for a in coco['annotations']:
        x, y, w, h = a['bbox']
        boxes.setdefault(a['image_id'], []).append(
            (names[a['category_id']], [x, y, x + w, y + h]))
    counts = dict(detections=0, correct=0, other_class=0, elsewhere=0,
                  targets=0, gt=0)
    confused: Dict[str, int] = {}
    for result in detections['results']:
        name = osp.basename(result['target'])
        if name not in images:
            raise ValueError(f'Target {result["target"]!r} is not an image '
                             'of the annotation file (matched by file name).')
        objects = boxes.get(images[name], [])
        own = np.array([b for c, b in objects if c == class_name],
                       float).reshape(-1, 4)
        other_names = [c for c, _ in objects if c != class_name]
        other = np.array([b for c, b in objects if c != class_name],
                         float).reshape(-1, 4)
        counts['targets'] += 1
        counts['gt'] += len(own)
        det = result['detections'][q_idx]
        scores = np.asarray(det['scores'], float)
        dets = np.asarray(det['bboxes'], float).reshape(-1, 4)
        used = np.zeros(len(own), bool)
        for i in np.argsort(-scores, kind='stable'):
            if scores[i] < score_thr:
                break
            counts['detections'] += 1
            if len(own):
                ious = box_iou(dets[i:i + 1], own)[0]
                ious[used] = -1
                j = int(np.argmax(ious))
                if ious[j] >= iou_thr:
                    used[j] = True
                    counts['correct'] += 1
                    continue
            ious = box_iou(dets[i:i + 1], other)[0] if len(other) else []
            if len(other) and ious.max() >= iou_thr:
                counts['other_class'] += 1
                hit = other_names[int(np.argmax(ious))]
                confused[hit] = confused.get(hit, 0) + 1
            else:
                counts['elsewhere'] += 1
    out: Dict[str, float] = dict(counts)
    out['precision'] = (counts['correct'] / counts['detections']
                        if counts['detections'] else float('nan'))
    out['recall'] = (counts['correct'] / counts['gt'] if counts['gt']
                     else float('nan'))
    out['confused_with'] = dict(sorted(confused.items(),
                                       key=lambda kv: (-kv[1], kv[0])))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('detections')
    parser.add_argument('ann_file')
    parser.add_argument('--class', dest='class_name', required=True)
    parser.add_argument('--query', default=None)
    parser.add_argument('--score-thr', type=float, default=0.5)
    parser.add_argument('--iou-thr', type=float, default=0.5)
    args = parser.parse_args()
    for path in (args.detections, args.ann_file):
        if not osp.isfile(path):
            raise FileNotFoundError(f'{path!r} not found.')
    with open(args.detections) as f:
        detections = json.load(f)
    with open(args.ann_file) as f:
        coco = json.load(f)
    r = demo_precision(detections, coco, args.class_name, args.score_thr,
                       args.iou_thr, args.query)
    print(f'{r["targets"]} targets, {r["gt"]} boxes of {args.class_name}; '
          f'{r["detections"]} detections scoring >= {args.score_thr}: '
          f'{r["correct"]} on {args.class_name}, {r["other_class"]} on '
          f'other classes, {r["elsewhere"]} elsewhere; precision '
          f'{100 * r["precision"]:.1f} %, recall {100 * r["recall"]:.1f} %')
    if r['confused_with']:
        print('on other classes: ' + ', '.join(
            f'{name} {n}' for name, n in r['confused_with'].items()))


if __name__ == '__main__':
    main()

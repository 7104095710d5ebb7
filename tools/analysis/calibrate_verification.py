"""Choose the query-verification threshold of a trained model on its *seen*
classes (``OneShotInferencer(...)(verify_thr=...)``, ``tools/demo.py
--verify-thr``; oneshot/apis/verification.py).

    python tools/analysis/calibrate_verification.py CONFIG CHECKPOINT \\
        [--ann-file A --img-dir D] [--max-images N] [--score-thr 0.5] \\
        [--report-unseen] [--thr T] [--out calibration.json]

One query per seen class (the largest box of the class's first image, by
image id) is run over every image of the annotation file (default: the
config's test set; ``--max-images N``: its first N images by id; the
training images keep the choice away from the test images), the query's
own image excluded, as the demo would run
it over a folder. Each detection scoring >= ``--score-thr`` gets its cosine
similarity to the query; for every threshold 0.50, 0.51, ... 0.99 the mean
precision and mean recall over the seen queries are computed as
``tools/analysis/demo_precision.py`` does (a detection is correct on an
object of the query's class, IoU >= 0.5). The threshold with the best F1 of
the two means is printed. No unseen class is used for the choice;
``--report-unseen`` only reports the unseen classes at that threshold;
``--thr T`` reports at T (a threshold chosen elsewhere, e.g. on the training
images) instead of choosing one.
"""
import argparse
import json
import os.path as osp
import sys
from typing import Dict, List, Sequence

import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

from demo_precision import demo_precision  # noqa: E402

THRESHOLDS = tuple(round(0.5 + 0.01 * i, 2) for i in range(50))


def class_queries(coco: dict, classes: Sequence[str]) -> Dict[str, tuple]:
    """Class name -> (image id, file name, [x1, y1, x2, y2]): the largest
    box of the class's first image (lowest id)."""
    names = {c['id']: c['name'] for c in coco['categories']}
    files = {im['id']: im['file_name'] for im in coco['images']}
    out = {}
    for name in classes:
        anns = [a for a in coco['annotations']
                if names[a['category_id']] == name and not a.get('iscrowd')]
        if not anns:
            raise ValueError(f'Class {name!r} has no box in the annotation '
                             'file: no query for it.')
        first = min(a['image_id'] for a in anns)
        a = max((a for a in anns if a['image_id'] == first),
                key=lambda a: (a['bbox'][2] * a['bbox'][3], -a['id']))
        x, y, w, h = a['bbox']
        out[name] = (first, files[first], [x, y, x + w, y + h])
    return out


def classes_to_find(coco: dict, classes: Sequence[str]) -> List[str]:
    """The classes of ``classes`` that have a box in an image other than
    their query's (:func:`class_queries`). A class whose boxes all lie in
    that one image has nothing to find: its recall is undefined and would
    turn every mean into NaN (many-class data over a few hundred images)."""
    names = {c['id']: c['name'] for c in coco['categories']}
    images: Dict[str, set] = {}
    for a in coco['annotations']:
        if not a.get('iscrowd'):
            images.setdefault(names[a['category_id']], set()).add(
                a['image_id'])
    return [n for n in classes if len(images.get(n, ())) > 1]


def threshold_table(per_class: Dict[str, dict], coco: dict,
                    thresholds: Sequence[float] = THRESHOLDS,
                    score_thr: float = 0.5) -> List[dict]:
    """Mean precision and recall over the classes of ``per_class`` (name ->
    a ``detections.json``-like dict of that class's query, with
    ``similarity`` per detection), without the check (``thr=None``) and
    for every threshold. Returns rows ``thr``, ``precision``, ``recall``,
    ``f1`` (of the two means), ``per_class`` (name -> (precision,
    recall))."""
    rows = []
    for thr in (None, *thresholds):
        per = {}
        for name, dets in per_class.items():
            kept = dict(dets, results=[
                dict(r, detections=[_keep(d, thr) for d in r['detections']])
                for r in dets['results']])
            r = demo_precision(kept, coco, name, score_thr=score_thr)
            # No confident detection: nothing wrong said (precision 1).
            p = 1.0 if r['detections'] == 0 else r['precision']
            per[name] = (p, r['recall'])
        p = float(np.mean([v[0] for v in per.values()]))
        rec = float(np.mean([v[1] for v in per.values()]))
        rows.append(dict(thr=thr, precision=p, recall=rec,
                         f1=2 * p * rec / (p + rec) if p + rec else 0.0,
                         per_class=per))
    return rows


def _keep(det: dict, thr) -> dict:
    if thr is None:
        return det
    keep = np.asarray(det['similarity'], float) >= thr
    return dict(det, bboxes=np.asarray(det['bboxes'], float).reshape(
        -1, 4)[keep].tolist(),
        scores=np.asarray(det['scores'], float)[keep].tolist(),
        similarity=np.asarray(det['similarity'], float)[keep].tolist())


def run_queries(inferencer, coco: dict, img_dir: str,
                classes: Sequence[str], score_thr: float) -> Dict[str, dict]:
    """Each class's query over every image but its own: name ->
    ``detections.json``-like dict with similarities."""
    from oneshot.apis import Query
    queries = class_queries(coco, classes)
    names = list(queries)
    encoded = inferencer.encode(
        [Query(osp.join(img_dir, f), box, name=n)
         for n, (_, f, box) in queries.items()])
    out = {n: dict(queries=[dict(name=n)], results=[]) for n in names}
    for im in sorted(coco['images'], key=lambda im: im['id']):
        path = osp.join(img_dir, im['file_name'])
        (res, ) = inferencer(path, encoded, score_thr=score_thr,
                             verify_thr=-2.0)
        for n, det in zip(names, res['detections']):
            if queries[n][0] == im['id']:
                continue  # the query's own image
            out[n]['results'].append(dict(target=path, detections=[dict(
                query=n, bboxes=det['bboxes'].tolist(),
                scores=det['scores'].tolist(),
                similarity=det['similarity'].tolist())]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--ann-file', help='default: the config\'s test set')
    parser.add_argument('--img-dir')
    parser.add_argument('--max-images', type=int, default=None,
                        help='use the first N images (by id) only')
    parser.add_argument('--score-thr', type=float, default=0.5)
    parser.add_argument('--report-unseen', action='store_true')
    parser.add_argument('--thr', type=float, default=None,
                        help='report at this threshold instead of choosing')
    parser.add_argument('--device', default=None)
    parser.add_argument('--out', default=None, help='write the table (JSON)')
    args = parser.parse_args()
    from mmengine.config import Config

    from oneshot.apis import OneShotInferencer
    from oneshot.datasets.splits import resolve_split
    cfg = Config.fromfile(args.config)
    ds = cfg.test_dataloader.dataset
    root = ds.get('data_root', '') or ''
    ann_file = args.ann_file or osp.join(root, ds.ann_file)
    img_dir = args.img_dir or osp.join(root, ds.data_prefix.get('img', ''))
    with open(ann_file) as f:
        coco = json.load(f)
    if args.max_images is not None:
        keep = set(sorted(im['id'] for im in coco['images'])
                   [:args.max_images])
        coco = dict(coco, images=[im for im in coco['images']
                                  if im['id'] in keep],
                    annotations=[a for a in coco['annotations']
                                 if a['image_id'] in keep])
    names = [c['name'] for c in coco['categories']]
    seen, unseen = resolve_split(ds.split, names, repr(ann_file))
    present = {a['category_id'] for a in coco['annotations']}
    ids = {c['name']: c['id'] for c in coco['categories']}
    unseen = [n for n in unseen if ids[n] in present]
    findable = set(classes_to_find(coco, [*seen, *unseen]))
    left_out = {tag: [n for n in group if n not in findable]
                for tag, group in (('seen', seen), ('unseen', unseen))}
    seen = [n for n in seen if n in findable]
    unseen = [n for n in unseen if n in findable]
    for tag, names_out in left_out.items():
        if names_out:
            print(f'{len(names_out)} {tag} classes left out: their boxes '
                  'lie only in their query\'s image among these images '
                  f'({", ".join(names_out[:5])}'
                  f'{", ..." if len(names_out) > 5 else ""})')
    if not seen:
        raise SystemExit(f'No seen class of {ann_file} has boxes in two or '
                         'more of these images; use more images '
                         '(--max-images).')
    inferencer = OneShotInferencer(args.config, args.checkpoint,
                                   device=args.device)
    table = threshold_table(
        run_queries(inferencer, coco, img_dir, seen, args.score_thr), coco,
        thresholds=THRESHOLDS if args.thr is None else [args.thr],
        score_thr=args.score_thr)
    best = max(table[1:], key=lambda r: (r['f1'], -r['thr']))
    how = ('best F1 of the seen means' if args.thr is None else
           'given by --thr')
    none = table[0]
    print(f'{len(seen)} seen-class queries over {len(coco["images"])} '
          f'images of {ann_file} (score >= {args.score_thr}):')
    print(f'  no check:           precision {100 * none["precision"]:.1f} '
          f'%, recall {100 * none["recall"]:.1f} %')
    print(f'  verify_thr {best["thr"]:.2f}:    precision '
          f'{100 * best["precision"]:.1f} %, recall '
          f'{100 * best["recall"]:.1f} % ({how})')
    out = dict(config=args.config, checkpoint=args.checkpoint,
               ann_file=ann_file, score_thr=args.score_thr,
               verify_thr=best['thr'],
               seen=table)
    if args.report_unseen and unseen:
        rows = threshold_table(
            run_queries(inferencer, coco, img_dir, unseen, args.score_thr),
            coco, thresholds=[best['thr']], score_thr=args.score_thr)
        for tag, r in (('no check', rows[0]),
                       (f'verify_thr {best["thr"]:.2f}', rows[1])):
            print(f'  unseen, {tag}: precision {100 * r["precision"]:.1f} '
                  f'%, recall {100 * r["recall"]:.1f} %')
        out['unseen'] = rows
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(out, f, indent=1)
        print(f'  table: {args.out}')


if __name__ == '__main__':
    main()

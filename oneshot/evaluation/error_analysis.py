"""Where the confident false positives of a one-shot detector come from.

A one-shot detector can find objects without finding the *query's*
objects. AP50 does not tell the two apart; this module does. Every
detection scoring at least ``score_thr`` in an episode is put in exactly
one category, checked in this order (the first rule that applies wins):

1. ``true_positive``: IoU >= ``iou_thr`` with a not yet matched box of the
   episode class. Detections are matched greedily by decreasing score
   within their episode, each to the unmatched box of highest IoU, as
   COCOeval does.
2. ``ignored``: IoF (intersection over the detection's area, COCO's crowd
   overlap) >= ``iou_thr`` with a crowd box of the episode class. Neither a
   true nor a false positive, as in COCOeval.
3. ``duplicate``: IoU >= ``iou_thr`` with a box of the episode class that an
   earlier (higher-scoring) detection already matched.
4. ``wrong_class`` (a matching error): IoU >= ``iou_thr`` with a box of
   *another* class of the target (``other_gt_bboxes``). The detector found
   an object, but not one of the query's class; the class of the best
   overlapping such box is the class the query was taken for.
5. ``poor_box``: ``LOOSE_IOU`` (0.1) <= IoU < ``iou_thr`` with a box of the
   episode class (``poor_box_on['query_class']``) or, failing that, with a
   box of another class (``poor_box_on['other_class']``).
6. ``background``: none of the above.

Why this order: a detection that can be credited to the query's class is
(1-3); only then is it blamed on another object (4), so a box that
clearly covers the query object is never counted as a confusion. A clear
hit on another object (4) goes before a loose overlap with the query's
class (5): the box sits on the other object. Loose overlaps with another
class's box count as poor boxes, not as wrong class: with a box that
covers less than half of an object one cannot tell whether the detector
took that object for the query's class or drew a sloppy box in a busy
region, and the confusion figures should only hold clear cases. The two
kinds of poor boxes are counted apart, so nothing is lost.

Detections on negative targets (episodes flagged ``negative``: the target
holds no instance of the class) go through the same rules; with no box of
the episode class they are ``wrong_class``, ``poor_box`` (other class) or
``background``. The ``duplicate``, ``wrong_class``, ``poor_box`` and
``background`` detections are the false positives; precision at the
threshold is ``true_positive / (true_positive + false positives)``.

The episode records are those of :class:`OneShotMetric` (see
:func:`oneshot.evaluation.oneshot_metric.episode_record`);
:class:`ErrorAnalysisRecorder` is a metric that keeps them for
``tools/analysis/analyze_errors.py``.
"""
import os
import os.path as osp
from collections import defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from mmdet.registry import METRICS

from .oneshot_metric import OneShotMetric

LOOSE_IOU = 0.1
"""IoU from which a missed box still counts as a poor box, not background
(the bound of Hoiem et al., *Diagnosing Error in Object Detectors*)."""

FP_CATEGORIES = ('wrong_class', 'poor_box', 'background', 'duplicate')
"""The false-positive categories, in the order they are reported."""

CATEGORIES = ('true_positive', 'ignored') + FP_CATEGORIES
"""Every category a confident detection can fall into."""

REQUIRED_KEYS = ('label', 'pred_bboxes', 'pred_scores', 'gt_bboxes')


# ----------------------------------------------------------------------
# Geometry
# ----------------------------------------------------------------------
def _boxes(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).reshape(-1, 4)


def _area(boxes: np.ndarray) -> np.ndarray:
    return (np.clip(boxes[:, 2] - boxes[:, 0], 0, None) *
            np.clip(boxes[:, 3] - boxes[:, 1], 0, None))


def _intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    return wh[..., 0] * wh[..., 1]


def box_iou(a, b) -> np.ndarray:
    """IoU of every box of ``a`` (N, 4) with every box of ``b`` (M, 4).

    Args:
        a: Boxes ``(N, 4)`` in xyxy.
        b: Boxes ``(M, 4)`` in xyxy.

    Returns:
        np.ndarray: ``(N, M)`` IoUs (0 where a union is empty).
    """
    a, b = _boxes(a), _boxes(b)
    inter = _intersection(a, b)
    union = _area(a)[:, None] + _area(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def box_iof(a, b) -> np.ndarray:
    """Intersection of every box of ``a`` with every box of ``b`` over the
    area of the ``a`` box (COCO's overlap with a crowd box).

    Args:
        a: Boxes ``(N, 4)`` in xyxy (detections).
        b: Boxes ``(M, 4)`` in xyxy (crowd regions).

    Returns:
        np.ndarray: ``(N, M)`` overlaps (0 for an empty ``a`` box).
    """
    a, b = _boxes(a), _boxes(b)
    inter = _intersection(a, b)
    area = _area(a)[:, None]
    return np.where(area > 0, inter / np.maximum(area, 1e-12), 0.0)


# ----------------------------------------------------------------------
# Classification of the detections of one episode
# ----------------------------------------------------------------------
def _check_record(i: int, r: dict, num_classes: int) -> None:
    where = f'record {i} (episode_id {r.get("episode_id", "?")})' \
        if isinstance(r, dict) else f'record {i}'
    if not isinstance(r, dict):
        raise TypeError(f'{where}: expected a dict, got {type(r).__name__}')
    missing = [k for k in REQUIRED_KEYS if k not in r]
    if missing:
        raise KeyError(f'{where}: missing keys {missing} (an episode record '
                       'of OneShotMetric has them)')
    label = r['label']
    if not 0 <= int(label) < num_classes:
        raise ValueError(f'{where}: label {label} is not a class index '
                         f'(0 .. {num_classes - 1})')
    n = _boxes(r['pred_bboxes']).shape[0]
    scores = np.asarray(r['pred_scores']).reshape(-1)
    if len(scores) != n:
        raise ValueError(f'{where}: {n} pred_bboxes but {len(scores)} '
                         'pred_scores')
    others = _boxes(r.get('other_gt_bboxes', np.zeros((0, 4))))
    other_labels = np.asarray(r.get('other_gt_labels', []),
                              dtype=np.int64).reshape(-1)
    if len(others) != len(other_labels):
        raise ValueError(f'{where}: {len(others)} other_gt_bboxes but '
                         f'{len(other_labels)} other_gt_labels')
    if len(other_labels) and not ((other_labels >= 0) &
                                  (other_labels < num_classes)).all():
        raise ValueError(f'{where}: other_gt_labels {other_labels.tolist()}'
                         f' hold values outside 0 .. {num_classes - 1}')
    if r.get('negative', False) and len(_boxes(r['gt_bboxes'])):
        raise ValueError(f'{where}: flagged negative but has gt_bboxes')


def classify_episode(record: dict, score_thr: float = 0.5,
                     iou_thr: float = 0.5) -> List[dict]:
    """Categorise the confident detections of one episode record.

    Args:
        record (dict): An episode record (see the module docstring).
        score_thr (float): Detections scoring below this are not looked
            at. Defaults to 0.5.
        iou_thr (float): IoU of a hit. Defaults to 0.5.

    Returns:
        list[dict]: One dict per detection scoring >= ``score_thr``, by
        decreasing score: ``index`` (into ``pred_bboxes``), ``score``,
        ``bbox`` (xyxy list), ``category`` (one of :data:`CATEGORIES`),
        ``iou`` (the IoU/IoF that decided the category, 0 for background),
        ``detected_label`` (the other class of a ``wrong_class`` or
        ``poor_box`` on another class, else -1) and ``poor_box_on``
        (``'query_class'`` / ``'other_class'`` for a poor box, else None).
    """
    boxes = _boxes(record['pred_bboxes'])
    scores = np.asarray(record['pred_scores'], dtype=np.float64).reshape(-1)
    gts = _boxes(record['gt_bboxes'])
    crowd = _boxes(record.get('ignored_bboxes', np.zeros((0, 4))))
    others = _boxes(record.get('other_gt_bboxes', np.zeros((0, 4))))
    other_labels = np.asarray(record.get('other_gt_labels', []),
                              dtype=np.int64).reshape(-1)
    keep = np.flatnonzero(scores >= score_thr)
    keep = keep[np.argsort(-scores[keep], kind='stable')]
    iou_gt = box_iou(boxes[keep], gts)
    iof_crowd = box_iof(boxes[keep], crowd)
    iou_other = box_iou(boxes[keep], others)
    matched = np.zeros(len(gts), bool)
    out = []
    for row, idx in enumerate(keep):
        det = dict(index=int(idx), score=float(scores[idx]),
                   bbox=[float(v) for v in boxes[idx]], detected_label=-1,
                   poor_box_on=None)
        ious = iou_gt[row]
        free = np.where(matched, -1.0, ious)
        best_other = int(np.argmax(iou_other[row])) if len(others) else -1
        other_iou = float(iou_other[row, best_other]) if len(others) else 0.
        if len(gts) and free.max() >= iou_thr:
            j = int(np.argmax(free))
            matched[j] = True
            det.update(category='true_positive', iou=float(ious[j]))
        elif len(crowd) and iof_crowd[row].max() >= iou_thr:
            det.update(category='ignored', iou=float(iof_crowd[row].max()))
        elif len(gts) and ious.max() >= iou_thr:
            det.update(category='duplicate', iou=float(ious.max()))
        elif other_iou >= iou_thr:
            det.update(category='wrong_class', iou=other_iou,
                       detected_label=int(other_labels[best_other]))
        elif len(gts) and ious.max() >= LOOSE_IOU:
            det.update(category='poor_box', iou=float(ious.max()),
                       poor_box_on='query_class')
        elif other_iou >= LOOSE_IOU:
            det.update(category='poor_box', iou=other_iou,
                       poor_box_on='other_class',
                       detected_label=int(other_labels[best_other]))
        else:
            det.update(category='background', iou=float(max(
                ious.max() if len(gts) else 0., other_iou)))
        out.append(det)
    return out


# ----------------------------------------------------------------------
# Aggregation
# ----------------------------------------------------------------------
def _new_tally() -> dict:
    return dict(episodes=0, negative_episodes=0, num_gt=0, detections=0,
                negative_detections=0,
                counts={c: 0 for c in CATEGORIES},
                negative_counts={c: 0 for c in FP_CATEGORIES},
                poor_box_on=dict(query_class=0, other_class=0))


def _add(total: dict, part: dict) -> None:
    for k in ('episodes', 'negative_episodes', 'num_gt', 'detections',
              'negative_detections'):
        total[k] += part[k]
    for k in ('counts', 'negative_counts', 'poor_box_on'):
        for c, v in part[k].items():
            total[k][c] += v


def _ratio(num: float, den: float) -> Optional[float]:
    return float(num) / den if den else None


def _group(tally: dict) -> dict:
    """The reported figures of a tally (JSON-ready)."""
    counts = tally['counts']
    fps = sum(counts[c] for c in FP_CATEGORIES)
    tp = counts['true_positive']
    return dict(
        episodes=tally['episodes'],
        negative_episodes=tally['negative_episodes'],
        num_gt=tally['num_gt'],
        detections=tally['detections'],
        true_positives=tp,
        ignored=counts['ignored'],
        false_positives=fps,
        fp_counts={c: counts[c] for c in FP_CATEGORIES},
        fp_shares={c: _ratio(counts[c], fps) or 0.0 for c in FP_CATEGORIES},
        poor_box_on=dict(tally['poor_box_on']),
        precision=_ratio(tp, tp + fps),
        recall=_ratio(tp, tally['num_gt']),
        negative_fp_counts=dict(tally['negative_counts']),
        false_alarms_per_negative=_ratio(tally['negative_detections'],
                                         tally['negative_episodes']))


def analyze_errors(records: Sequence[dict],
                   classes: Sequence[str],
                   score_thr: float = 0.5,
                   iou_thr: float = 0.5,
                   seen_classes: Sequence[str] = (),
                   unseen_classes: Sequence[str] = (),
                   max_examples: int = 4) -> dict:
    """Count the confident detections of every category (see the module
    docstring for the rules and their order).

    Args:
        records (Sequence[dict]): Episode records of :class:`OneShotMetric`
            (keys ``label``, ``pred_bboxes``, ``pred_scores``,
            ``gt_bboxes``; optional ``ignored_bboxes``, ``other_gt_bboxes``,
            ``other_gt_labels``, ``negative``, ``episode_id``,
            ``img_path``).
        classes (Sequence[str]): Class names; ``label`` and
            ``other_gt_labels`` index them.
        score_thr (float): Confidence threshold. Defaults to 0.5.
        iou_thr (float): IoU of a hit, in (0.1, 1). Defaults to 0.5.
        seen_classes (Sequence[str]): Names of the seen classes.
        unseen_classes (Sequence[str]): Names of the unseen classes.
        max_examples (int): Highest-scoring detections kept per confusion
            pair (for :func:`draw_confusions`). Defaults to 4.

    Returns:
        dict: JSON-serialisable, with keys

        - ``settings``: ``score_thr``, ``iou_thr``, ``loose_iou``,
          ``categories`` (the false-positive categories, in order).
        - ``overall``, ``seen``, ``unseen``: a *group* each (``seen`` and
          ``unseen`` count the episodes of those classes; zeros when there
          are none): ``episodes``, ``negative_episodes``, ``num_gt``
          (boxes of the episode classes), ``detections`` (scoring
          >= ``score_thr``), ``true_positives``, ``ignored``,
          ``false_positives``, ``fp_counts`` and ``fp_shares`` (per
          false-positive category; shares of ``false_positives``, 0 when
          there are none), ``poor_box_on`` (``query_class`` /
          ``other_class`` counts), ``precision`` and ``recall`` (None when
          undefined), ``negative_fp_counts`` (the false positives on
          negative targets, per category) and ``false_alarms_per_negative``
          (mean number of confident detections per negative target; None
          without negative targets).
        - ``confusions``: ``[{query_class, detected_class, count,
          share_of_query_class_fps, examples}]`` for the ``wrong_class``
          detections, by decreasing count (then names); ``examples`` lists
          up to ``max_examples`` of them by decreasing score as
          ``{record_index, episode_id, img_path, bbox, score, iou}``.
        - ``per_class``: one group per class with episodes, by label, plus
          ``class``, ``label``, ``split`` (``'seen'``, ``'unseen'`` or
          None) and ``most_confused_with`` (class name or None).
    """
    if not 0 <= score_thr <= 1:
        raise ValueError(f'score_thr must be in [0, 1], got {score_thr}')
    if not LOOSE_IOU < iou_thr < 1:
        raise ValueError(f'iou_thr must be in ({LOOSE_IOU}, 1), got '
                         f'{iou_thr}')
    records = list(records)
    if not records:
        raise ValueError('analyze_errors got no episode record.')
    classes = list(classes)
    for i, r in enumerate(records):
        _check_record(i, r, len(classes))
    seen, unseen = set(seen_classes), set(unseen_classes)

    tallies: Dict[int, dict] = defaultdict(_new_tally)
    pairs: Dict[Tuple[int, int], List[dict]] = defaultdict(list)
    for i, r in enumerate(records):
        label = int(r['label'])
        negative = bool(r.get('negative', False))
        dets = classify_episode(r, score_thr, iou_thr)
        t = tallies[label]
        t['episodes'] += 1
        t['detections'] += len(dets)
        if negative:
            t['negative_episodes'] += 1
            t['negative_detections'] += len(dets)
        else:
            t['num_gt'] += len(_boxes(r['gt_bboxes']))
        for d in dets:
            t['counts'][d['category']] += 1
            if negative and d['category'] in FP_CATEGORIES:
                t['negative_counts'][d['category']] += 1
            if d['poor_box_on']:
                t['poor_box_on'][d['poor_box_on']] += 1
            if d['category'] == 'wrong_class':
                pairs[label, d['detected_label']].append(dict(
                    record_index=i, episode_id=r.get('episode_id'),
                    img_path=r.get('img_path'), bbox=d['bbox'],
                    score=d['score'], iou=d['iou']))

    overall, by_split = _new_tally(), dict(seen=_new_tally(),
                                           unseen=_new_tally())
    for label, t in tallies.items():
        _add(overall, t)
        name = classes[label]
        for split, names in (('seen', seen), ('unseen', unseen)):
            if name in names:
                _add(by_split[split], t)

    def fps_of(label: int) -> int:
        return sum(tallies[label]['counts'][c] for c in FP_CATEGORIES)

    confusions = []
    for (q, d), dets in pairs.items():
        dets.sort(key=lambda e: -e['score'])
        confusions.append(dict(
            query_class=classes[q], detected_class=classes[d],
            count=len(dets),
            share_of_query_class_fps=len(dets) / fps_of(q),
            examples=dets[:max_examples]))
    confusions.sort(key=lambda c: (-c['count'], c['query_class'],
                                   c['detected_class']))

    per_class = []
    for label in sorted(tallies):
        name = classes[label]
        top = [c['detected_class'] for c in confusions
               if c['query_class'] == name]
        per_class.append(dict(
            {'class': name, 'label': label,
             'split': 'unseen' if name in unseen else
             'seen' if name in seen else None},
            **_group(tallies[label]),
            most_confused_with=top[0] if top else None))
    return dict(
        settings=dict(score_thr=float(score_thr), iou_thr=float(iou_thr),
                      loose_iou=LOOSE_IOU, categories=list(FP_CATEGORIES)),
        overall=_group(overall),
        seen=_group(by_split['seen']),
        unseen=_group(by_split['unseen']),
        confusions=confusions,
        per_class=per_class)


def _pct(x: Optional[float]) -> str:
    return '-' if x is None else f'{100 * x:.1f}%'


def _group_line(g: dict) -> str:
    fp = g['fp_counts']
    share = g['fp_shares']
    parts = ', '.join(f'{name} {fp[c]} ({_pct(share[c])})' for c, name in (
        ('wrong_class', 'wrong class'), ('poor_box', 'poor box'),
        ('background', 'background'), ('duplicate', 'duplicates')))
    line = (f'confident detections: {g["detections"]}; true positives '
            f'{g["true_positives"]} (precision {_pct(g["precision"])}, '
            f'recall {_pct(g["recall"])}); false positives '
            f'{g["false_positives"]}: {parts}')
    if g['ignored']:
        line += f'; ignored (crowd) {g["ignored"]}'
    if g['false_alarms_per_negative'] is not None:
        line += (f'; false alarms per negative target '
                 f'{g["false_alarms_per_negative"]:.2f} '
                 f'({g["negative_episodes"]} targets)')
    return line


def summary_text(analysis: dict, top: int = 5) -> str:
    """A short human summary of :func:`analyze_errors`' result.

    Args:
        analysis (dict): The result of :func:`analyze_errors`.
        top (int): Confusion pairs listed. Defaults to 5.

    Returns:
        str: A few lines: overall, seen and unseen figures (the groups with
        episodes) and the most confused pairs.
    """
    s = analysis['settings']
    lines = [f'Error analysis at score >= {s["score_thr"]:g}, IoU >= '
             f'{s["iou_thr"]:g}:']
    for key in ('overall', 'seen', 'unseen'):
        if analysis[key]['episodes']:
            lines.append(f'  {key} ({analysis[key]["episodes"]} episodes): '
                         + _group_line(analysis[key]))
    pairs = ', '.join(
        f'{c["query_class"]} -> {c["detected_class"]} {c["count"]}'
        for c in analysis['confusions'][:top])
    lines.append(f'  most confused (query -> taken for): {pairs or "none"}')
    return '\n'.join(lines)


# ----------------------------------------------------------------------
# Picture
# ----------------------------------------------------------------------
MARGIN = 6
TITLE_H = 24
HEADER_H = 20
CAPTION_H = 18
BG = (32, 32, 32)
TILE_BG = (80, 80, 80)
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_SCALE = 0.4


def confusion_canvas_shape(rows: int, tile: int = 128,
                           max_examples: int = 4) -> Tuple[int, int]:
    """Height and width of :func:`draw_confusions`' picture.

    Args:
        rows (int): Confusion pairs drawn (at least one row is drawn, for
            the "none" message).
        tile (int): Tile side in pixels.
        max_examples (int): Example columns beside the query.

    Returns:
        tuple[int, int]: ``(height, width)``.
    """
    row_h = HEADER_H + tile + CAPTION_H + MARGIN
    width = MARGIN + (1 + max_examples) * (tile + MARGIN)
    return TITLE_H + max(rows, 1) * row_h + MARGIN, width


def _read(path: Optional[str], what: str) -> np.ndarray:
    if not path or not osp.isfile(path):
        raise FileNotFoundError(f'{what}: image {path!r} not found')
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f'{what}: cv2 cannot read image {path!r}')
    return img


def _text(img: np.ndarray, text: str, x: int, y: int, width: int,
          color=(235, 235, 235)) -> None:
    """``text`` with its baseline at ``y``, cut to fit ``width`` px."""
    while text and cv2.getTextSize(text, _FONT, _SCALE, 1)[0][0] > width:
        text = text[:-2] + '~' if len(text) > 2 else ''
    cv2.putText(img, text, (x, y), _FONT, _SCALE, color, 1, cv2.LINE_AA)


def _tile(img: np.ndarray, crop, tile: int,
          box=None) -> np.ndarray:
    """The ``crop`` region of ``img`` fit into a ``tile`` square (aspect
    kept, centred on grey); ``box`` (image pixels) drawn in red."""
    h, w = img.shape[:2]
    x1, y1, x2, y2 = crop
    x1, y1 = int(np.clip(np.floor(x1), 0, w - 1)), int(
        np.clip(np.floor(y1), 0, h - 1))
    x2, y2 = int(np.clip(np.ceil(x2), x1 + 1, w)), int(
        np.clip(np.ceil(y2), y1 + 1, h))
    patch = img[y1:y2, x1:x2]
    s = tile / max(patch.shape[:2])
    pw = max(1, min(tile, int(round(patch.shape[1] * s))))
    ph = max(1, min(tile, int(round(patch.shape[0] * s))))
    patch = cv2.resize(patch, (pw, ph), interpolation=cv2.INTER_NEAREST
                       if s >= 1 else cv2.INTER_AREA)
    out = np.full((tile, tile, 3), TILE_BG, np.uint8)
    ox, oy = (tile - pw) // 2, (tile - ph) // 2
    out[oy:oy + ph, ox:ox + pw] = patch
    if box is not None:
        bx1, by1 = (box[0] - x1) * s + ox, (box[1] - y1) * s + oy
        bx2, by2 = (box[2] - x1) * s + ox, (box[3] - y1) * s + oy
        cv2.rectangle(out, (int(bx1), int(by1)),
                      (int(np.ceil(bx2)) - 1, int(np.ceil(by2)) - 1),
                      (0, 0, 255), 1)
    return out


def draw_confusions(records: Sequence[dict], analysis: dict,
                    classes: Sequence[str], out_png: str, top_k: int = 8,
                    tile: int = 128, max_examples: int = 4,
                    context: float = 0.25) -> np.ndarray:
    """Draw the most confused (query class -> detected class) pairs.

    One row per pair of ``analysis['confusions'][:top_k]``: a header line
    (``query -> detected: count (share of the query class's false
    positives)``), then the query crop of one episode of the pair
    (``query_img_paths[0]`` at ``query_bboxes[0]``) and up to
    ``max_examples`` of its highest-scoring wrong-class detections, each
    cropped from its target with ``context`` of the box size around it and
    the box in red, captioned with score and IoU. Tiles are ``tile`` px
    squares; the picture's size is :func:`confusion_canvas_shape`. Without
    any confusion a single row says so.

    Args:
        records (Sequence[dict]): The records ``analysis`` was computed from
            (the examples index them).
        analysis (dict): The result of :func:`analyze_errors`.
        classes (Sequence[str]): Class names (to check the records agree).
        out_png (str): Path of the PNG to write (folders are created).
        top_k (int): Pairs drawn. Defaults to 8.
        tile (int): Tile side in pixels. Defaults to 128.
        max_examples (int): Example columns. Defaults to 4.
        context (float): Margin around a detection, as a fraction of its
            width/height. Defaults to 0.25.

    Returns:
        np.ndarray: The picture (BGR, uint8).
    """
    pairs = analysis['confusions'][:top_k]
    h, w = confusion_canvas_shape(len(pairs), tile, max_examples)
    canvas = np.full((h, w, 3), BG, np.uint8)
    s = analysis['settings']
    _text(canvas, f'Confident wrong-class detections (score >= '
          f'{s["score_thr"]:g}, IoU >= {s["iou_thr"]:g} with another '
          'class\'s box); red: the detection', MARGIN, TITLE_H - 8,
          w - 2 * MARGIN)
    if not pairs:
        _text(canvas, 'No confident wrong-class detection.', MARGIN,
              TITLE_H + HEADER_H - 6, w - 2 * MARGIN)
    row_h = HEADER_H + tile + CAPTION_H + MARGIN
    for row, pair in enumerate(pairs):
        y0 = TITLE_H + row * row_h
        _text(canvas, f'{row + 1}. query {pair["query_class"]} -> taken '
              f'for {pair["detected_class"]}: {pair["count"]} '
              f'({_pct(pair["share_of_query_class_fps"])} of the '
              'query class\'s FPs)', MARGIN, y0 + HEADER_H - 6,
              w - 2 * MARGIN)
        ty = y0 + HEADER_H
        examples = pair['examples'][:max_examples]
        for col in range(1 + len(examples)):
            ex = examples[max(col - 1, 0)]
            i = ex['record_index']
            if not 0 <= i < len(records):
                raise ValueError(
                    f'confusion {pair["query_class"]} -> '
                    f'{pair["detected_class"]}: record_index {i} is not a '
                    f'record (got {len(records)}); pass the records the '
                    'analysis was computed from')
            r = records[i]
            if classes[int(r['label'])] != pair['query_class']:
                raise ValueError(
                    f'record {i} has class {classes[int(r["label"])]!r}, '
                    f'not {pair["query_class"]!r}: the records do not '
                    'belong to this analysis')
            x = MARGIN + col * (tile + MARGIN)
            if col == 0:
                paths, qboxes = r.get('query_img_paths'), r.get(
                    'query_bboxes')
                if not paths or not qboxes:
                    raise KeyError(f'record {i} (episode_id '
                                   f'{r.get("episode_id")}): needs '
                                   'query_img_paths and query_bboxes')
                img = _read(paths[0], f'query of record {i}')
                t = _tile(img, qboxes[0], tile)
                caption = f'query: {pair["query_class"]}'
            else:
                img = _read(r.get('img_path'), f'target of record {i}')
                x1, y1, x2, y2 = ex['bbox']
                mx, my = context * (x2 - x1), context * (y2 - y1)
                t = _tile(img, (x1 - mx, y1 - my, x2 + mx, y2 + my), tile,
                          ex['bbox'])
                caption = f'score {ex["score"]:.2f} IoU {ex["iou"]:.2f}'
            canvas[ty:ty + tile, x:x + tile] = t
            _text(canvas, caption, x, ty + tile + CAPTION_H - 5, tile)
    os.makedirs(osp.dirname(osp.abspath(out_png)), exist_ok=True)
    if not cv2.imwrite(out_png, canvas):
        raise OSError(f'cannot write {out_png!r}')
    return canvas


# ----------------------------------------------------------------------
# Metric that keeps the records (for the CLI)
# ----------------------------------------------------------------------
@METRICS.register_module()
class ErrorAnalysisRecorder(OneShotMetric):
    """Keeps the episode records of the test set instead of scoring them.

    Appended to ``test_evaluator`` by ``tools/analysis/analyze_errors.py``:
    :meth:`process` is :class:`OneShotMetric`'s, :meth:`compute_metrics`
    stores the gathered records in ``self.records`` (on the main process)
    and returns no metric, so the evaluator's other metrics and the logs
    are unchanged.

    Args:
        collect_device (str): ``'cpu'`` or ``'gpu'``.
        prefix (str, optional): Unused (no metric is returned).
    """

    default_prefix: Optional[str] = 'errors'

    def __init__(self, collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.records: List[dict] = []

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Store the records; returns an empty dict."""
        self.records = list(results)
        return {}

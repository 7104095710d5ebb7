"""OneShotMetric equals an independent AP50 computation; the query-blind
level, the matching gain and the negative-target figures too."""
import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

from oneshot.evaluation import OneShotMetric, summarize_runs

CLASSES = ('a', 'b', 'c', 'd')
META = dict(classes=CLASSES, seen_classes=('a', 'b', 'c'),
            unseen_classes=('d',))


def iou(box, boxes):
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa
    return inter / (area(box) + area(boxes) - inter)


def reference_ap50(episodes, label):
    """COCO-style AP at IoU 0.5 of one class, written from the definition:
    detections of all episodes of the class ranked by score; each one
    matches the best-IoU unmatched ground truth of its episode (IoU >= 0.5)
    and is a TP; otherwise, if it overlaps a crowd box by IoU >= 0.5 it is
    ignored (COCO computes crowd IoU as intersection over detection area);
    otherwise an FP. Precision is made monotone and sampled at 101 recall
    points."""
    eps = [e for e in episodes if e['label'] == label]
    n_gt = sum(len(e['gt']) for e in eps)
    dets = [(s, i, b) for i, e in enumerate(eps)
            for b, s in zip(e['boxes'], e['scores'])]
    dets.sort(key=lambda d: -d[0])
    used = [np.zeros(len(e['gt']), bool) for e in eps]
    tp, fp = [], []
    for _, i, b in dets:
        gt = np.asarray(eps[i]['gt'], float).reshape(-1, 4)
        best, best_iou = -1, 0.5
        if len(gt):
            ious = iou(np.asarray(b, float), gt)
            for j in np.argsort(-ious, kind='stable'):
                if not used[i][j] and ious[j] >= best_iou:
                    best, best_iou = j, ious[j]
                    break
        if best >= 0:
            used[i][best] = True
            tp.append(1), fp.append(0)
            continue
        crowd = np.asarray(eps[i]['crowd'], float).reshape(-1, 4)
        if len(crowd):
            b = np.asarray(b, float)
            x1 = np.maximum(b[0], crowd[:, 0])
            y1 = np.maximum(b[1], crowd[:, 1])
            x2 = np.minimum(b[2], crowd[:, 2])
            y2 = np.minimum(b[3], crowd[:, 3])
            inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
            if (inter / ((b[2] - b[0]) * (b[3] - b[1])) >= 0.5).any():
                continue
        tp.append(0), fp.append(1)
    tp, fp = np.cumsum(tp), np.cumsum(fp)
    recall = tp / max(n_gt, 1)
    precision = tp / np.maximum(tp + fp, np.finfo(float).eps)
    for k in range(len(precision) - 2, -1, -1):
        precision[k] = max(precision[k], precision[k + 1])
    sampled = []
    for r in np.linspace(0, 1, 101):
        k = np.searchsorted(recall, r, side='left')
        sampled.append(precision[k] if k < len(precision) else 0.0)
    return float(np.mean(sampled))


def make_sample(i, e):
    s = DetDataSample(metainfo=dict(
        episode_id=i, img_id=100 + i, episode_label=e['label'],
        episode_cat_id=e['label'] + 1, run=e.get('run', 0),
        negative=e.get('negative', False),
        other_gt_bboxes=[list(b) for b in e.get('others', [])],
        other_gt_labels=[0] * len(e.get('others', []))))
    s.pred_instances = InstanceData(
        bboxes=torch.tensor(np.asarray(e['boxes'], np.float32).reshape(-1,
                                                                       4)),
        scores=torch.tensor(np.asarray(e['scores'], np.float32)),
        labels=torch.full((len(e['scores']), ), e['label']))
    s.gt_instances = InstanceData(
        bboxes=torch.tensor(np.asarray(e['gt'], np.float32).reshape(-1, 4)),
        labels=torch.zeros(len(e['gt']), dtype=torch.long))
    s.ignored_instances = InstanceData(
        bboxes=torch.tensor(np.asarray(e['crowd'],
                                       np.float32).reshape(-1, 4)),
        labels=torch.zeros(len(e['crowd']), dtype=torch.long))
    return s.to_dict()


def evaluate(episodes, **kwargs):
    metric = OneShotMetric(**kwargs)
    metric.dataset_meta = META
    metric.process({}, [make_sample(i, e) for i, e in enumerate(episodes)])
    return metric.evaluate(len(episodes))


def random_episodes(rng, n=60):
    eps = []
    for _ in range(n):
        label = int(rng.integers(0, 4))
        n_gt = int(rng.integers(1, 4))
        xy = rng.uniform(0, 200, (n_gt, 2))
        wh = rng.uniform(10, 60, (n_gt, 2))
        gt = np.concatenate([xy, xy + wh], 1)
        boxes = []
        for g in gt:  # jittered copies of some gts (hits and near misses)
            if rng.random() < 0.7:
                boxes.append(g + rng.normal(0, 6, 4))
        for _ in range(int(rng.integers(0, 4))):  # random false positives
            p = rng.uniform(0, 200, 2)
            boxes.append(np.concatenate([p, p + rng.uniform(10, 60, 2)]))
        boxes = np.asarray(boxes).reshape(-1, 4)
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
        crowd = []
        if rng.random() < 0.2:
            p = rng.uniform(0, 150, 2)
            crowd = [np.concatenate([p, p + 80])]
            boxes = np.concatenate([boxes, [[p[0] + 5, p[1] + 5, p[0] + 40,
                                             p[1] + 40]]])
        eps.append(dict(label=label, gt=gt, crowd=crowd, boxes=boxes,
                        scores=rng.random(len(boxes))))
    return eps


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_metric_equals_independent_ap(seed):
    eps = random_episodes(np.random.default_rng(seed))
    m = evaluate(eps)
    for label, name in enumerate(CLASSES):
        if not any(e['label'] == label for e in eps):
            continue
        assert m[f'oneshot/AP50_{name}'] == pytest.approx(
            reference_ap50(eps, label), abs=1e-6)
    per_class = [reference_ap50(eps, k) for k in range(4)]
    assert m['oneshot/AP50'] == pytest.approx(np.mean(per_class), abs=1e-6)
    assert m['oneshot/seen_AP50'] == pytest.approx(
        np.mean(per_class[:3]), abs=1e-6)
    assert m['oneshot/unseen_AP50'] == pytest.approx(per_class[3], abs=1e-6)


def box(x, y, s=20):
    return [x, y, x + s, y + s]


def test_hand_checked_values():
    perfect = [dict(label=0, gt=[box(0, 0)], crowd=[], boxes=[box(0, 0)],
                    scores=[0.9])]
    assert evaluate(perfect)['oneshot/AP50'] == pytest.approx(1.0)
    wrong = [dict(label=0, gt=[box(0, 0)], crowd=[], boxes=[box(100, 100)],
                  scores=[0.9])]
    assert evaluate(wrong)['oneshot/AP50'] == pytest.approx(0.0)
    # One FP ranked above the only TP: precision 1/2 at every recall point.
    fp_first = [dict(label=0, gt=[box(0, 0)], crowd=[],
                     boxes=[box(100, 100), box(0, 0)], scores=[0.9, 0.8])]
    assert evaluate(fp_first)['oneshot/AP50'] == pytest.approx(0.5)
    # An episode without predictions still counts: its box is a miss.
    missed = perfect + [dict(label=0, gt=[box(50, 50)], crowd=[], boxes=[],
                             scores=[])]
    assert evaluate(missed)['oneshot/AP50'] == pytest.approx(
        np.mean([1.0] * 51 + [0.0] * 50))


def test_detection_of_another_episode_class_is_not_matched_across_episodes():
    # Same image, two episodes: a box of class b detected in the episode of
    # class a is a false positive there, even though it is a b ground truth.
    eps = [dict(label=0, gt=[box(0, 0)], crowd=[],
                boxes=[box(60, 60), box(0, 0)], scores=[0.9, 0.5]),
           dict(label=1, gt=[box(60, 60)], crowd=[], boxes=[box(60, 60)],
                scores=[0.9])]
    m = evaluate(eps)
    assert m['oneshot/AP50_a'] == pytest.approx(0.5)
    assert m['oneshot/AP50_b'] == pytest.approx(1.0)
    assert 'oneshot/unseen_AP50' not in m  # no unseen episode: left out


def test_summarize_runs():
    s = summarize_runs([{'x': 0.2}, {'x': 0.4}, {'x': 0.6}])
    assert s['x'] == pytest.approx(0.4)
    assert s['x_std'] == pytest.approx(0.2)
    assert summarize_runs([{'x': 0.3}])['x_std'] == 0.0


def blind_episodes(eps, seed):
    """The query-blind detector, built from the metric's documented rule:
    every non-crowd box of the target (own class first, then the others)
    with scores ``default_rng([seed, run, episode_id]).random(n)``."""
    out = []
    for i, e in enumerate(eps):
        boxes = np.concatenate([np.asarray(e['gt'], float).reshape(-1, 4),
                                np.asarray(e.get('others', []),
                                           float).reshape(-1, 4)])
        scores = np.random.default_rng([seed, e.get('run', 0), i]).random(
            len(boxes))
        out.append(dict(e, boxes=boxes, scores=scores))
    return out


def with_other_classes(rng, eps):
    """Give every episode 0-3 boxes of other classes, away from its own."""
    for e in eps:
        others = []
        for _ in range(int(rng.integers(0, 4))):
            p = rng.uniform(300, 500, 2)
            others.append(np.concatenate([p, p + rng.uniform(10, 60, 2)]))
        e['others'] = np.asarray(others).reshape(-1, 4)
    return eps


@pytest.mark.parametrize('seed', [0, 1])
def test_query_blind_level_and_gain_equal_independent_computation(seed):
    rng = np.random.default_rng(seed)
    eps = with_other_classes(rng, random_episodes(rng))
    m = evaluate(eps, blind_seeds=3)
    for label, name in enumerate(CLASSES):
        blind = np.mean([reference_ap50(blind_episodes(eps, s), label)
                         for s in range(3)])
        assert m[f'oneshot/blind_AP50_{name}'] == pytest.approx(blind,
                                                                abs=1e-6)
        assert m[f'oneshot/gain_{name}'] == pytest.approx(
            reference_ap50(eps, label) - blind, abs=1e-6)
    blind = [np.mean([reference_ap50(blind_episodes(eps, s), k)
                      for s in range(3)]) for k in range(4)]
    assert m['oneshot/blind_AP50'] == pytest.approx(np.mean(blind), abs=1e-6)
    assert m['oneshot/unseen_blind_AP50'] == pytest.approx(blind[3],
                                                           abs=1e-6)
    assert m['oneshot/seen_gain'] == pytest.approx(
        m['oneshot/seen_AP50'] - m['oneshot/seen_blind_AP50'], abs=1e-9)


def two_object_episodes(n, scores_own, scores_other):
    """n episodes of class a, each with its own object and one object of
    another class; the detector scores them as given."""
    return [dict(label=0, gt=[box(0, 0)], crowd=[], others=[box(100, 100)],
                 boxes=[box(0, 0), box(100, 100)],
                 scores=[scores_own(i), scores_other(i)]) for i in range(n)]


def test_gain_of_perfect_inverted_and_random_rankings():
    n = 200
    # The query-blind level of "one own object, one look-alike" is the AP of
    # a random ranking of n TPs among 2n detections: close to the
    # analytic value for large n (~0.5-0.6), far from 0 and 1.
    perfect = evaluate(two_object_episodes(n, lambda i: 0.9,
                                           lambda i: 0.1))
    blind = perfect['oneshot/blind_AP50']
    assert 0.45 < blind < 0.65
    assert perfect['oneshot/AP50'] == pytest.approx(1.0)
    assert perfect['oneshot/gain'] == pytest.approx(1.0 - blind)
    # Every look-alike ranked above every own object: n FPs, then n TPs,
    # so the interpolated precision is 1/2 at every recall: AP 0.5, below
    # the blind level (a negative gain).
    inverted = evaluate(two_object_episodes(n, lambda i: 0.1,
                                            lambda i: 0.9))
    assert inverted['oneshot/AP50'] == pytest.approx(0.5)
    assert inverted['oneshot/gain'] == pytest.approx(0.5 - blind)
    assert inverted['oneshot/gain'] < -0.02
    # A detector that ignores the query: gain ~ 0.
    rng = np.random.default_rng(5)
    noise = rng.random((n, 2))
    random_rank = evaluate(two_object_episodes(
        n, lambda i: noise[i, 0], lambda i: noise[i, 1]))
    assert abs(random_rank['oneshot/gain']) < 0.06
    assert random_rank['oneshot/blind_AP50'] == pytest.approx(blind)
    # Only the own object in every target: the blind level is perfect.
    alone = [dict(label=0, gt=[box(0, 0)], crowd=[], boxes=[box(0, 0)],
                  scores=[0.9])]
    m = evaluate(alone)
    assert m['oneshot/blind_AP50'] == pytest.approx(1.0)
    assert m['oneshot/gain'] == pytest.approx(0.0)


def test_negative_targets_give_open_set_ap_and_false_alarms():
    pos = [dict(label=0, gt=[box(0, 0)], crowd=[], boxes=[box(0, 0)],
                scores=[0.8]),
           dict(label=3, gt=[box(0, 0)], crowd=[], boxes=[box(0, 0)],
                scores=[0.8])]
    neg = [dict(label=0, gt=[], crowd=[], negative=True, others=[box(50, 50)],
                boxes=[box(50, 50), box(80, 80)], scores=[0.9, 0.3]),
           dict(label=0, gt=[], crowd=[], negative=True, boxes=[],
                scores=[]),
           dict(label=3, gt=[], crowd=[], negative=True, boxes=[box(5, 5)],
                scores=[0.6])]
    m = evaluate(pos + neg)
    protocol = evaluate(pos)
    # The papers' AP ignores negative targets.
    assert m['oneshot/AP50'] == protocol['oneshot/AP50'] == pytest.approx(1)
    assert m['oneshot/blind_AP50'] == protocol['oneshot/blind_AP50']
    # Class a: a 0.9 false positive above its only TP -> AP 0.5; class d:
    # its false alarm (0.6) ranks below the TP (0.8) -> AP 1.
    assert m['oneshot/AP50_a'] == pytest.approx(1.0)
    assert m['oneshot/open_AP50'] == pytest.approx((0.5 + 1.0) / 2)
    assert m['oneshot/seen_open_AP50'] == pytest.approx(0.5)
    assert m['oneshot/unseen_open_AP50'] == pytest.approx(1.0)
    # Scores >= 0.5 on negatives: a has 1 and 0 over two targets, d 1.
    assert m['oneshot/seen_FA_per_neg'] == pytest.approx(0.5)
    assert m['oneshot/unseen_FA_per_neg'] == pytest.approx(1.0)
    assert m['oneshot/FA_per_neg'] == pytest.approx(0.75)
    assert 'oneshot/open_AP50' not in protocol
    assert evaluate(pos + neg, fa_score_thr=0.2)[
        'oneshot/seen_FA_per_neg'] == pytest.approx(1.0)

"""AP50 of one-shot episodes with COCOeval, the query-blind level and the
matching gain."""
import contextlib
import io
from collections import Counter, OrderedDict
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmdet.datasets.api_wrappers import COCO, COCOeval
from mmdet.registry import METRICS
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger
from terminaltables import AsciiTable


COUNT_METRICS = ('FA_per_neg', )
"""Metric names (last part, without group prefix) that are counts, not
fractions: printed as they are, not as percentages."""


def is_count_metric(key: str) -> bool:
    """Whether metric ``key`` (e.g. ``oneshot/unseen_FA_per_neg``) is a
    count rather than a fraction."""
    return key.split('/')[-1].endswith(COUNT_METRICS)


def format_metric(key: str, value: float) -> str:
    """``value`` as printed in the tables: a percentage with one decimal
    for fractions, two decimals for counts."""
    return f'{value:.2f}' if is_count_metric(key) else f'{100 * value:.1f}'


def summary_line(metrics: Dict[str, float]) -> str:
    """One line with the headline figures, e.g. ``AP50 62.0 (seen 63.1,
    unseen 58.7) | query-blind 30.2 (...) | gain +31.8 (...)``."""
    parts = []
    for name, title in (('AP50', 'AP50'), ('blind_AP50', 'query-blind'),
                        ('gain', 'gain'), ('open_AP50', 'open-set AP50'),
                        ('FA_per_neg', 'false alarms per negative target')):
        keys = [k for k in metrics if k.split('/')[-1] == name]
        if not keys:
            continue
        prefix = keys[0][:-len(name)]
        sign = '+' if name == 'gain' else ''

        def fmt(k):
            v = metrics[k] if is_count_metric(k) else 100 * metrics[k]
            return f'{v:{sign}.2f}' if is_count_metric(k) else \
                f'{v:{sign}.1f}'

        groups = [f'{g} {fmt(prefix + g + "_" + name)}'
                  for g in ('seen', 'unseen')
                  if prefix + g + '_' + name in metrics]
        parts.append(f'{title} {fmt(keys[0])}' +
                     (f' ({", ".join(groups)})' if groups else ''))
    return ' | '.join(parts)


def _xyxy_to_xywh(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1)


@METRICS.register_module()
class OneShotMetric(BaseMetric):
    """Per-class AP50 over one-shot episodes, seen and unseen means, next to
    the query-blind level and the matching gain.

    COCOeval evaluates every (image, category) pair of its ground truth; a
    one-shot test set only evaluates the pairs that form episodes. So the
    metric builds its own COCO ground truth whose *images are the episodes*:
    an episode holds the boxes of its class in its target image (crowd boxes
    as ``iscrowd=1``, ignored), and the detections of that episode carry the
    same class. The same image with two classes is two episodes. AP of a
    class then pools all episodes of that class, as in the CoAE/BHRL
    evaluation (``AP50``: the papers' protocol, on targets that hold the
    class).

    **Query-blind level.** The AP50 of a detector that finds every object of
    the target perfectly but ignores the query: each episode's detections
    are all non-crowd ground-truth boxes of *every* class in its target
    (the episode class first, then ``other_gt_bboxes``), scored at random.
    Episode ``e`` of run ``r`` with seed ``s`` draws its scores with
    ``numpy.random.default_rng([s, r, e]).random(n)``; the level is the mean
    AP50 over ``blind_seeds`` seeds (``0 .. blind_seeds - 1``). The
    **matching gain** is ``AP50 - query-blind AP50``: what the detector
    gains by looking at the query. A gain near 0 means it finds objects, not
    the query's objects.

    **Negative targets.** Episodes flagged ``negative`` (targets without the
    class; ``OneShotCocoDataset(num_negatives=N)``) are left out of
    ``AP50`` and the query-blind level. When present, the metric adds
    ``open_AP50`` (AP50 over positive and negative targets together: every
    confident box on a negative target is a false positive) and
    ``FA_per_neg`` (detections scoring >= ``fa_score_thr`` per negative
    target): what a user of the demo sees on images that lack the class.

    The ground truth travels with each result (``process``), so the metric
    is exact under distributed testing: mmengine's ``collect_results``
    gathers episodes from every rank (``ImageGroupedSampler`` gives each
    rank whole images and pads nothing, so uneven parts are gathered
    completely). The gathered episodes are put back in the order of
    :func:`episode_order` before scoring, as one process sees them:
    COCOeval ranks equal scores in input order, so the AP does not depend
    on the number of processes. An episode that arrives twice (a test
    sampler that pads its ranks with repeats, whose repeats survive the
    gather) is an error naming it.

    Metrics (with ``prefix``, default ``oneshot``), each also as
    ``seen_<name>`` / ``unseen_<name>`` (means over the classes of
    ``dataset_meta['seen_classes']`` / ``['unseen_classes']`` that have
    episodes; a group without episodes is left out, not reported as NaN):
    ``AP50``, ``blind_AP50``, ``gain`` and, with negative targets,
    ``open_AP50`` and ``FA_per_neg``; per class ``AP50_<name>``,
    ``blind_AP50_<name>`` and ``gain_<name>``. All but ``FA_per_neg`` are
    fractions in [0, 1] (``gain`` in [-1, 1]).

    Args:
        iou_thr (float): IoU threshold. Defaults to 0.5.
        max_dets (int): Detections per episode considered. Defaults to 100.
        blind_seeds (int): Random scorings averaged for the query-blind
            level (0 to skip it). Defaults to 5.
        fa_score_thr (float): Score from which a detection on a negative
            target counts as a false alarm. Defaults to 0.5.
        collect_device (str): ``'cpu'`` or ``'gpu'``.
        prefix (str, optional): Metric name prefix. Defaults to
            ``'oneshot'``.
    """

    default_prefix: Optional[str] = 'oneshot'

    def __init__(self,
                 iou_thr: float = 0.5,
                 max_dets: int = 100,
                 blind_seeds: int = 5,
                 fa_score_thr: float = 0.5,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if not 0 < iou_thr < 1:
            raise ValueError(f'iou_thr must be in (0, 1), got {iou_thr}')
        if blind_seeds < 0:
            raise ValueError(f'blind_seeds must be >= 0, got {blind_seeds}')
        self.iou_thr = iou_thr
        self.max_dets = max_dets
        self.blind_seeds = blind_seeds
        self.fa_score_thr = fa_score_thr

    def process(self, data_batch: dict, data_samples: Sequence) -> None:
        """Keep, per episode, its identity, predictions and ground truth."""
        for sample in data_samples:
            if not isinstance(sample, dict):
                sample = sample.to_dict()
            missing = [k for k in ('episode_id', 'episode_label')
                       if k not in sample]
            if missing:
                raise KeyError(
                    f'OneShotMetric needs {missing} in the data sample '
                    'metainfo; use a one-shot dataset and PackOneShotInputs.')
            self.results.append(episode_record(sample))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """COCOeval on the episode ground truth; returns AP50 values, the
        query-blind level, the gain and the negative-target figures."""
        logger = MMLogger.get_current_instance()
        classes = self.dataset_meta['classes']
        results = episode_order(results)
        positives = [r for r in results if not r.get('negative', False)]
        negatives = [r for r in results if r.get('negative', False)]
        per_class = self.ap_per_class(positives, len(classes))
        if not per_class:
            raise ValueError('OneShotMetric got no episode with ground '
                             'truth; nothing to evaluate.')
        tables: Dict[str, Dict[int, float]] = OrderedDict(AP50=per_class)
        if self.blind_seeds:
            blind = self.query_blind_ap(positives, len(classes))
            tables['blind_AP50'] = blind
            tables['gain'] = {k: per_class[k] - blind[k] for k in per_class}
        if negatives:
            open_ap = self.ap_per_class(positives + negatives, len(classes))
            tables['open_AP50'] = {k: open_ap[k] for k in per_class}
            tables['FA_per_neg'] = self.false_alarms(negatives)

        seen = set(self.dataset_meta.get('seen_classes', ()))
        unseen = set(self.dataset_meta.get('unseen_classes', ()))
        metrics: Dict[str, float] = OrderedDict()
        for name, table in tables.items():
            if not table:
                continue
            metrics[name] = float(np.mean(list(table.values())))
            for group, names in (('seen', seen), ('unseen', unseen)):
                values = [v for label, v in table.items()
                          if classes[label] in names]
                if values:
                    metrics[f'{group}_{name}'] = float(np.mean(values))
        for name in ('AP50', 'blind_AP50', 'gain'):
            for label, value in tables.get(name, {}).items():
                metrics[f'{name}_{classes[label]}'] = value

        counts: Dict[int, int] = {}
        for r in positives:
            counts[r['label']] = counts.get(r['label'], 0) + 1
        cols = [k for k in ('AP50', 'blind_AP50', 'gain', 'open_AP50',
                            'FA_per_neg') if k in tables]
        rows = [['class', 'split', 'episodes'] + cols]
        for label in sorted(per_class):
            name = classes[label]
            rows.append([
                name, 'unseen' if name in unseen else
                'seen' if name in seen else '-', counts.get(label, 0)] + [
                format_metric(k, tables[k][label])
                if label in tables[k] else '-' for k in cols])
        logger.info('\n' + AsciiTable(rows).table + '\n' +
                    summary_line(metrics))
        return metrics

    def query_blind_ap(self, results: List[dict],
                       num_classes: int) -> Dict[int, float]:
        """Mean AP50 per class of the query-blind detector (see the class
        docstring) over ``blind_seeds`` random scorings."""
        runs = []
        for seed in range(self.blind_seeds):
            blind = []
            for r in results:
                boxes = np.concatenate([
                    np.asarray(r['gt_bboxes']).reshape(-1, 4),
                    np.asarray(r.get('other_gt_bboxes', np.zeros((0, 4))))
                    .reshape(-1, 4)])
                rng = np.random.default_rng(
                    [seed, max(int(r['run']), 0), int(r['episode_id'])])
                blind.append(dict(r, pred_bboxes=boxes,
                                  pred_scores=rng.random(len(boxes))))
            runs.append(self.ap_per_class(blind, num_classes))
        return {k: float(np.mean([ap[k] for ap in runs])) for k in runs[0]}

    def false_alarms(self, negatives: List[dict]) -> Dict[int, float]:
        """Mean number of detections scoring >= ``fa_score_thr`` per
        negative target, per class."""
        per_class: Dict[int, List[int]] = {}
        for r in negatives:
            per_class.setdefault(r['label'], []).append(
                int((np.asarray(r['pred_scores']) >= self.fa_score_thr)
                    .sum()))
        return {k: float(np.mean(v)) for k, v in per_class.items()}

    def ap_per_class(self, results: List[dict],
                     num_classes: int) -> Dict[int, float]:
        """AP at ``iou_thr`` per class label that has ground truth."""
        images, annotations, detections = [], [], []
        for i, r in enumerate(results):
            episode = i + 1  # unique even if episode ids repeat across runs
            images.append(dict(id=episode, width=1, height=1))
            cat = r['label'] + 1
            for boxes, crowd in ((r['gt_bboxes'], 0),
                                 (r['ignored_bboxes'], 1)):
                for x, y, w, h in _xyxy_to_xywh(boxes):
                    annotations.append(dict(
                        id=len(annotations) + 1, image_id=episode,
                        category_id=cat, bbox=[x, y, w, h], area=w * h,
                        iscrowd=crowd, ignore=crowd))
            for (x, y, w, h), score in zip(
                    _xyxy_to_xywh(r['pred_bboxes']), r['pred_scores']):
                detections.append(dict(
                    image_id=episode, category_id=cat,
                    bbox=[x, y, w, h], score=float(score)))
        present = sorted({a['category_id'] for a in annotations
                          if not a['iscrowd']})
        if not present:
            return {}
        gt = COCO()
        gt.dataset = dict(
            images=images, annotations=annotations,
            categories=[dict(id=c + 1, name=str(c))
                        for c in range(num_classes)])
        with contextlib.redirect_stdout(io.StringIO()):
            gt.createIndex()
            dt = gt.loadRes(detections) if detections else COCO()
            if not detections:
                dt.dataset = dict(images=images, annotations=[],
                                  categories=gt.dataset['categories'])
                dt.createIndex()
            coco_eval = COCOeval(gt, dt, 'bbox')
            coco_eval.params.catIds = present
            coco_eval.params.imgIds = [im['id'] for im in images]
            coco_eval.params.iouThrs = np.array([self.iou_thr])
            coco_eval.params.maxDets = [self.max_dets]
            coco_eval.params.areaRng = [[0, 1e10]]
            coco_eval.params.areaRngLbl = ['all']
            coco_eval.evaluate()
            coco_eval.accumulate()
        # precision: (T iou thrs, R recall thrs, K classes, A areas, M dets)
        precision = coco_eval.eval['precision'][0, :, :, 0, 0]
        aps = {}
        for k, cat in enumerate(present):
            p = precision[:, k]
            aps[cat - 1] = float(np.mean(p[p > -1])) if (p > -1).any() \
                else 0.0
        return aps


def episode_order(results: List[dict]) -> List[dict]:
    """``results`` sorted by (run, episode id): the order of the test
    dataset, which one process evaluates in, whatever order the ranks'
    parts were gathered in.

    Raises:
        ValueError: If an episode (run, episode id) occurs more than once.
    """
    keys = [(int(r.get('run', 0)), int(r['episode_id'])) for r in results]
    counts = Counter(keys)
    repeated = sorted(k for k, n in counts.items() if n > 1)
    if repeated:
        raise ValueError(
            f'OneShotMetric got {len(repeated)} episodes more than once '
            f'((run, episode id): {repeated[:10]}): the test sampler gave '
            'them to more than one rank (padding). Distributed testing needs '
            "test_dataloader.sampler=dict(type='ImageGroupedSampler') "
            '(whole images per rank, no padding).')
    order = sorted(range(len(results)), key=keys.__getitem__)
    return [results[i] for i in order]


def episode_record(sample: dict) -> dict:
    """What the metric keeps of one predicted episode (a data sample as a
    dict): numpy arrays and plain values only, so it gathers cheaply
    across ranks and pickles.

    Keys: ``episode_id``, ``img_id``, ``label`` (episode class), ``run``,
    ``negative`` (no instance of the class in the target), ``img_path``,
    ``query_img_paths``, ``query_bboxes``; ``pred_bboxes`` (N, 4) xyxy and
    ``pred_scores`` (N,); ``gt_bboxes`` / ``ignored_bboxes`` (the episode
    class's boxes, crowd boxes ignored); ``other_gt_bboxes`` (M, 4) and
    ``other_gt_labels`` (M,): the boxes of the other classes of the target.
    """
    pred = sample['pred_instances']
    gt = sample.get('gt_instances', {})
    ignored = sample.get('ignored_instances', {})
    empty = np.zeros((0, 4))
    return dict(
        episode_id=int(sample['episode_id']),
        img_id=int(sample.get('img_id', -1)),
        label=int(sample['episode_label']),
        run=int(sample.get('run', 0)),
        negative=bool(sample.get('negative', False)),
        img_path=sample.get('img_path'),
        query_img_paths=list(sample.get('query_img_paths', []) or []),
        query_bboxes=[list(map(float, b))
                      for b in sample.get('query_bboxes', []) or []],
        pred_bboxes=_to_numpy(pred['bboxes']).reshape(-1, 4),
        pred_scores=_to_numpy(pred['scores']).reshape(-1),
        gt_bboxes=_to_numpy(gt.get('bboxes', empty)).reshape(-1, 4),
        ignored_bboxes=_to_numpy(ignored.get('bboxes', empty)).reshape(-1, 4),
        other_gt_bboxes=_to_numpy(sample.get('other_gt_bboxes', empty)
                                  ).reshape(-1, 4),
        other_gt_labels=np.asarray(sample.get('other_gt_labels', []),
                                   dtype=np.int64).reshape(-1))


def _to_numpy(x) -> np.ndarray:
    if hasattr(x, 'tensor'):  # mmdet BaseBoxes
        x = x.tensor
    if hasattr(x, 'detach'):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)

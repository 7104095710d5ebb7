"""AP50 of one-shot episodes with COCOeval."""
import contextlib
import io
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmdet.datasets.api_wrappers import COCO, COCOeval
from mmdet.registry import METRICS
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger
from terminaltables import AsciiTable


def _xyxy_to_xywh(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1)


@METRICS.register_module()
class OneShotMetric(BaseMetric):
    """Per-class AP50 over one-shot episodes, seen and unseen means.

    COCOeval evaluates every (image, category) pair of its ground truth; a
    one-shot test set only evaluates the pairs that form episodes. So the
    metric builds its own COCO ground truth whose *images are the episodes*:
    an episode holds the boxes of its class in its target image (crowd boxes
    as ``iscrowd=1``, ignored), and the detections of that episode carry the
    same class. The same image with two classes is two episodes. AP of a
    class then pools all episodes of that class, as in the CoAE/BHRL
    evaluation.

    The ground truth travels with each result (``process``), so the metric
    is exact under distributed testing: mmengine's ``collect_results``
    gathers episodes from every rank.

    Metrics (with ``prefix``, default ``oneshot``): ``AP50`` (mean over the
    classes that have episodes), ``seen_AP50`` and ``unseen_AP50`` (means
    over the classes of ``dataset_meta['seen_classes']`` /
    ``['unseen_classes']`` that have episodes; a group without episodes is
    left out rather than reported as NaN), and ``AP50_<class name>`` for
    every evaluated class.

    Args:
        iou_thr (float): IoU threshold. Defaults to 0.5.
        max_dets (int): Detections per episode considered. Defaults to 100.
        collect_device (str): ``'cpu'`` or ``'gpu'``.
        prefix (str, optional): Metric name prefix. Defaults to
            ``'oneshot'``.
    """

    default_prefix: Optional[str] = 'oneshot'

    def __init__(self,
                 iou_thr: float = 0.5,
                 max_dets: int = 100,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if not 0 < iou_thr < 1:
            raise ValueError(f'iou_thr must be in (0, 1), got {iou_thr}')
        self.iou_thr = iou_thr
        self.max_dets = max_dets

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
            pred = sample['pred_instances']
            gt = sample.get('gt_instances', {})
            ignored = sample.get('ignored_instances', {})
            self.results.append(dict(
                episode_id=int(sample['episode_id']),
                img_id=int(sample.get('img_id', -1)),
                label=int(sample['episode_label']),
                run=int(sample.get('run', 0)),
                pred_bboxes=_to_numpy(pred['bboxes']).reshape(-1, 4),
                pred_scores=_to_numpy(pred['scores']).reshape(-1),
                gt_bboxes=_to_numpy(gt.get('bboxes', np.zeros((0, 4)))),
                ignored_bboxes=_to_numpy(
                    ignored.get('bboxes', np.zeros((0, 4))))))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """COCOeval on the episode ground truth; returns AP50 values."""
        logger = MMLogger.get_current_instance()
        classes = self.dataset_meta['classes']
        per_class = self.ap_per_class(results, len(classes))
        seen = set(self.dataset_meta.get('seen_classes', ()))
        unseen = set(self.dataset_meta.get('unseen_classes', ()))

        metrics: Dict[str, float] = OrderedDict()
        aps = {classes[label]: ap for label, ap in per_class.items()}
        if not aps:
            raise ValueError('OneShotMetric got no episode with ground '
                             'truth; nothing to evaluate.')
        metrics['AP50'] = float(np.mean(list(aps.values())))
        for group, names in (('seen', seen), ('unseen', unseen)):
            values = [ap for name, ap in aps.items() if name in names]
            if values:
                metrics[f'{group}_AP50'] = float(np.mean(values))
        for name, ap in aps.items():
            metrics[f'AP50_{name}'] = ap

        rows = [['class', 'split', 'episodes', 'AP50']]
        counts: Dict[int, int] = {}
        for r in results:
            counts[r['label']] = counts.get(r['label'], 0) + 1
        for label in sorted(per_class):
            name = classes[label]
            rows.append([
                name, 'unseen' if name in unseen else
                'seen' if name in seen else '-', counts.get(label, 0),
                f'{100 * per_class[label]:.1f}'])
        summary = ', '.join(f'{k} {100 * metrics[k]:.1f}'
                            for k in ('AP50', 'seen_AP50', 'unseen_AP50')
                            if k in metrics)
        logger.info('\n' + AsciiTable(rows).table + f'\n{summary}')
        return metrics

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


def _to_numpy(x) -> np.ndarray:
    if hasattr(x, 'tensor'):  # mmdet BaseBoxes
        x = x.tensor
    if hasattr(x, 'detach'):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)

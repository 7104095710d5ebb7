"""A tiny Siamese detector trained a few hundred iterations on a handful of
synthetic images learns to find the query's class — and not the other
classes in the same image, although colour cannot tell them apart: the data
are the shape mode, where every image holds two classes of one colour that
differ only in outline or inner pattern."""
import math
import os.path as osp

import numpy as np
import torch
from mmengine.dataset import pseudo_collate
from mmengine.runner import Runner
from pycocotools.coco import COCO
from quickstart_utils import quickstart_cfg

from oneshot.datasets.synthetic import generate_synthetic_dataset

# Filled shapes that differ in outline only; every image holds two of them
# in one colour (the generator's look-alike pair), often more.
CLASSES = ['circle-solid', 'square-solid', 'triangle-solid', 'star-solid']


def test_tiny_detector_learns_to_find_the_query_class(tmp_path):
    root = str(tmp_path / 'data')
    # Every class is a training class here, unseen ones included.
    generate_synthetic_dataset(root, num_train=8, num_val=1, seed=0,
                               classes=CLASSES, train_classes='all')
    cfg = quickstart_cfg(root, str(tmp_path / 'work'), max_iters=600,
                         ckpt_interval=600)
    cfg.randomness = dict(seed=0)
    for loader in ('train_dataloader', 'test_dataloader'):
        ds = cfg[loader].dataset
        ds.split = dict(unseen=[])  # every class is a training class here
        ds.ann_file = 'annotations/train.json'
        ds.data_prefix = dict(img='train/')
    cfg.train_dataloader.batch_size = 8
    cfg.test_dataloader.dataset.episode_classes = 'all'
    cfg.test_dataloader.dataset.num_negatives = 0  # targets with the class
    cfg.test_cfg.runs = 1
    cfg.optim_wrapper.optimizer.lr = 0.04
    cfg.param_scheduler[0].end = 20
    cfg.param_scheduler[1].milestones = [500]

    runner = Runner.from_cfg(cfg)
    runner.train()
    losses = runner.message_hub.get_scalar('train/loss').data[0]
    assert np.mean(losses[-20:]) < 0.5 * np.mean(losses[:20])

    metrics = runner.test()
    assert metrics['oneshot/AP50'] >= 0.8, metrics
    # Far above what a detector that ignores the query would score.
    assert metrics['oneshot/gain'] >= 0.3, metrics

    # In each target, the query's objects outscore the other classes'
    # objects — among them a look-alike of the same colour: an object's
    # score is the best score of a detection on it (IoU >= 0.5), 0 if none.
    dataset = runner.test_dataloader.dataset
    model = runner.model.eval()
    coco = COCO(osp.join(root, 'annotations/train.json'))
    ranked_first = confident_own = confident_other = 0
    chance = 0.0  # expected ranked_first if objects were scored at random
    for idx in range(len(dataset)):
        data = dataset[idx]
        with torch.no_grad():
            pred = model.test_step(pseudo_collate([data]))[0].pred_instances
        info = dataset.get_data_info(idx)
        own = np.array([i['bbox'] for i in info['instances']]).reshape(-1, 4)
        others = _other_class_boxes(coco, info)
        assert len(own) and len(others), idx
        boxes, scores = pred.bboxes.numpy(), pred.scores.numpy()
        own_scores = [_object_score(obj, boxes, scores) for obj in own]
        other_scores = [_object_score(obj, boxes, scores) for obj in others]
        ranked_first += min(own_scores) > max(other_scores)
        chance += 1 / math.comb(len(own) + len(others), len(own))
        confident_own += sum(s > 0.5 for s in own_scores)
        confident_other += sum(s > 0.5 for s in other_scores)
    print(f'{ranked_first} of {len(dataset)} episodes rank every object of '
          f'the query class above every other object (at random: '
          f'{chance:.1f}); objects found with a score > 0.5: {confident_own} '
          f'of the query class, {confident_other} of other classes')
    # Measured: 25 of 32 (one thread), against 4.9 at random; the model
    # still lets some look-alikes score above 0.5 (21 objects against 44).
    assert ranked_first >= max(0.6 * len(dataset), 2 * chance), (
        ranked_first, chance, len(dataset))


def _object_score(obj, boxes, scores):
    """Best score of a detection covering ``obj`` (IoU >= 0.5), else 0."""
    if not len(boxes):
        return 0.0
    hit = _iou(obj, boxes) >= 0.5
    return float(scores[hit].max()) if hit.any() else 0.0


def _other_class_boxes(coco, info):
    """xyxy boxes of the classes other than the episode's in its image."""
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[info['img_id']]))
    boxes = [[a['bbox'][0], a['bbox'][1], a['bbox'][0] + a['bbox'][2],
              a['bbox'][1] + a['bbox'][3]] for a in anns
             if a['category_id'] != info['episode_cat_id']]
    return np.array(boxes, dtype=np.float32).reshape(-1, 4)


def _iou(box, boxes):
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / (area + areas - inter)

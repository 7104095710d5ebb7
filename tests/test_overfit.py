"""A tiny Siamese detector trained a few hundred iterations on a handful of
synthetic images learns to find the query's class — and not the other
classes in the same image, although colour cannot tell them apart: the data
are the shape mode, where every image holds two classes of one colour that
differ only in outline or inner pattern."""
import os.path as osp

import numpy as np
import torch
from mmengine.dataset import pseudo_collate
from mmengine.runner import Runner
from pycocotools.coco import COCO
from quickstart_utils import quickstart_cfg

from oneshot.datasets.synthetic import generate_synthetic_dataset

# Every pair shares the outline or the pattern, except the two diagonals.
CLASSES = ['square-solid', 'square-outline', 'circle-solid', 'circle-outline']


def test_tiny_detector_learns_to_find_the_query_class(tmp_path):
    root = str(tmp_path / 'data')
    generate_synthetic_dataset(root, num_train=8, num_val=1, seed=0,
                               classes=CLASSES)
    # 600 iterations, not fewer: after 300 the model still confused
    # red-circle and yellow-triangle on some machines (5 of 35 confident
    # boxes on the wrong class with 2 threads, 1 with 1 thread); after 600
    # it made no such box with either.
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

    # Confident detections sit on the query's class, not on the other
    # classes of the same image: a confident box that covers another
    # class's object (IoU >= 0.5) and none of the query's class is a
    # wrong-class detection.
    dataset = runner.test_dataloader.dataset
    model = runner.model.eval()
    coco = COCO(osp.join(root, 'annotations/train.json'))
    hits = wrong = background = 0
    for idx in range(len(dataset)):
        data = dataset[idx]
        with torch.no_grad():
            pred = model.test_step(pseudo_collate([data]))[0].pred_instances
        info = dataset.get_data_info(idx)
        own = np.array([i['bbox'] for i in info['instances']]).reshape(-1, 4)
        others = _other_class_boxes(coco, info)
        for box in pred.bboxes[pred.scores > 0.5].numpy():
            if len(own) and _iou(box, own).max() >= 0.5:
                hits += 1
            elif len(others) and _iou(box, others).max() >= 0.5:
                wrong += 1
            else:
                background += 1
    print(f'confident detections: {hits} on the query class, {wrong} on '
          f'other classes, {background} elsewhere')
    assert hits > 0
    assert wrong <= 0.1 * (hits + wrong), (hits, wrong, background)


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

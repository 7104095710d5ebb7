"""A tiny Siamese detector trained a few hundred iterations on a handful of
synthetic images learns to find the query's class — and not the other
classes in the same image."""
import numpy as np
import torch
from mmengine.dataset import pseudo_collate
from mmengine.runner import Runner
from quickstart_utils import quickstart_cfg

from oneshot.datasets.synthetic import generate_synthetic_dataset

CLASSES = ['red-circle', 'blue-square', 'yellow-triangle', 'green-star']


def test_tiny_detector_learns_to_find_the_query_class(tmp_path):
    root = str(tmp_path / 'data')
    generate_synthetic_dataset(root, num_train=8, num_val=1, seed=0,
                               classes=CLASSES)
    cfg = quickstart_cfg(root, str(tmp_path / 'work'), max_iters=300,
                         ckpt_interval=300)
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
    cfg.param_scheduler[1].milestones = [250]

    runner = Runner.from_cfg(cfg)
    runner.train()
    losses = runner.message_hub.get_scalar('train/loss').data[0]
    assert np.mean(losses[-20:]) < 0.5 * np.mean(losses[:20])

    metrics = runner.test()
    assert metrics['oneshot/AP50'] >= 0.8, metrics

    # Confident detections sit on the query's class, not on the other
    # classes of the same image.
    dataset = runner.test_dataloader.dataset
    model = runner.model.eval()
    hits = misses = 0
    for idx in range(len(dataset)):
        data = dataset[idx]
        with torch.no_grad():
            pred = model.test_step(pseudo_collate([data]))[0].pred_instances
        info = dataset.get_data_info(idx)
        own = np.array([i['bbox'] for i in info['instances']]).reshape(-1, 4)
        for box in pred.bboxes[pred.scores > 0.5].numpy():
            ious = _iou(box, own)
            hits += int(len(ious) > 0 and ious.max() >= 0.5)
            misses += int(len(ious) == 0 or ious.max() < 0.5)
    assert hits > 0
    assert misses <= 0.1 * (hits + misses), (hits, misses)


def _iou(box, boxes):
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / (area + areas - inter)

"""Pre-train a detector's backbone on crops of the *seen* classes only.

A tiny backbone trained from scratch inside the detector learns to find
objects long before it learns to tell fine-grained classes apart (on the
glyph data the Siamese quickstart model gains only a few AP50 points over
the query-blind level). Classifying the seen-class objects first gives the
backbone features that separate shapes; the one-shot detector then starts
from them. This is what the papers do with ImageNet weights with the COCO
classes removed (docs/protocol.md), done on the project's own data.

What may be used is fixed by the config's *training* dataset: the crops are
exactly its query candidates (``OneShotCocoDataset.query_bank``) of its
episode classes, i.e. the seen classes of the split, never the unseen ones.
They are cropped and resized like training queries
(:class:`~oneshot.datasets.transforms.LoadQueryPatches` /
:class:`~oneshot.datasets.transforms.ResizeQueryPatches`) with a random
jitter of the box, and normalised by the model's data preprocessor
settings. The head is a global average pool of the backbone's last output
and one linear layer, dropped after training. With ``supcon_weight > 0`` a
supervised contrastive term (:func:`supervised_contrastive_loss`) on a
small projection of the same pooled feature is added, over batches of
``P`` classes x ``K`` crops; the projection is dropped as well.

The result is a plain state dict of backbone keys (loadable with
``torch.load(weights_only=True)``); a config starts from it with::

    model = dict(backbone=dict(init_cfg=dict(
        type='Pretrained', checkpoint='work_dirs/.../backbone.pth')))
"""
import math
import os
import os.path as osp
import random
import time
from typing import Callable, Dict, List, Optional, Tuple

import mmcv
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import Config

from oneshot.datasets.transforms.query import (LoadQueryPatches,
                                               ResizeQueryPatches)

Crop = Tuple[str, Tuple[float, float, float, float], int]


def _find_transform(pipeline: List[dict], name: str) -> Optional[dict]:
    for step in pipeline:
        if step.get('type') == name:
            return step
    return None


def seen_crops(cfg: Config) -> Tuple[List[Crop], List[str]]:
    """The query candidates of the config's training dataset.

    Returns:
        tuple: ``(crops, class_names)``: crops as ``(img_path, xyxy box,
        class index)`` with indices into ``class_names``, the training
        dataset's episode classes (the split's seen classes).
    """
    from mmdet.registry import DATASETS

    ds_cfg = cfg.train_dataloader.dataset.copy()
    while 'dataset' in ds_cfg and ds_cfg.get('type') != 'OneShotCocoDataset':
        ds_cfg = ds_cfg['dataset'].copy()  # unwrap RepeatDataset & co.
    if ds_cfg.get('type') != 'OneShotCocoDataset':
        raise TypeError(
            'Backbone pre-training reads the seen classes from '
            'train_dataloader.dataset, which must be a OneShotCocoDataset; '
            f'got {ds_cfg.get("type")!r}.')
    if ds_cfg.get('test_mode', False):
        raise ValueError('train_dataloader.dataset has test_mode=True; the '
                         'pre-training crops must come from training data.')
    ds_cfg['pipeline'] = []
    dataset = DATASETS.build(ds_cfg)
    names = dataset.metainfo['classes']
    labels = dataset.episode_labels()
    unseen = set(dataset.metainfo['unseen_classes'])
    leaked = sorted(names[lb] for lb in labels if names[lb] in unseen)
    if leaked:  # only if someone sets episode_classes='all' for training
        raise ValueError(
            f'train_dataloader.dataset (episode_classes='
            f'{dataset.episode_classes!r}) includes unseen classes '
            f'{leaked[:5]}; pre-training on them would leak the test '
            "classes. Use episode_classes='seen'.")
    crops: List[Crop] = []
    for index, label in enumerate(labels):
        for entry in dataset.query_bank.get(label, ()):
            # QueryEntry: (ann_id, img_id, img_path, xyxy box, ...)
            crops.append((entry[2], tuple(entry[3]), index))
    if not crops:
        raise ValueError(f'{ds_cfg.get("ann_file")!r}: no query candidates '
                         'of the seen classes to pre-train on.')
    return crops, [names[lb] for lb in labels]


class CropSampler:
    """Random, jittered, query-like crops of ``crops`` as tensors.

    Args:
        crops (list): From :func:`seen_crops`.
        size (int): Side of the square crop (the config's query size).
        mean, std (sequence): Normalisation, RGB order if ``bgr_to_rgb``.
        bgr_to_rgb (bool): Convert the BGR images to RGB first.
        jitter (float): Each box side moves by up to this fraction of the
            box size (also the scale augmentation).
        flip_prob (float): Horizontal flip probability (the query's).
        seed (int): Seed of the crop draws and augmentations.
    """

    def __init__(self, crops: List[Crop], size: int, mean, std,
                 bgr_to_rgb: bool = True, jitter: float = 0.15,
                 flip_prob: float = 0.5, seed: int = 0) -> None:
        self.crops = crops
        self.loader = LoadQueryPatches()
        self.resizer = ResizeQueryPatches(size=size)
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
        self.bgr_to_rgb = bgr_to_rgb
        self.jitter = jitter
        self.flip_prob = flip_prob
        self.rng = random.Random(seed)
        self._images: Dict[str, np.ndarray] = {}
        # Crop indices per class, for class-balanced batches.
        self._by_class: Dict[int, List[int]] = {}
        for i, crop in enumerate(crops):
            self._by_class.setdefault(crop[2], []).append(i)

    def _image(self, path: str) -> np.ndarray:
        img = self._images.get(path)
        if img is None:
            img = self.loader._load(path)
            self._images[path] = img
        return img

    def crop(self, index: int) -> np.ndarray:
        """One augmented ``(size, size, 3)`` BGR crop of ``crops[index]``."""
        path, (x1, y1, x2, y2), _ = self.crops[index]
        img = self._image(path)
        h, w = img.shape[:2]
        bw, bh = x2 - x1, y2 - y1
        j = self.jitter
        box = [x1 + self.rng.uniform(-j, j) * bw,
               y1 + self.rng.uniform(-j, j) * bh,
               x2 + self.rng.uniform(-j, j) * bw,
               y2 + self.rng.uniform(-j, j) * bh]
        if box[2] - box[0] < 1 or box[3] - box[1] < 1:
            box = [x1, y1, x2, y2]
        cx1, cy1 = max(0, math.floor(box[0])), max(0, math.floor(box[1]))
        cx2, cy2 = min(w, math.ceil(box[2])), min(h, math.ceil(box[3]))
        if cx2 - cx1 < 1 or cy2 - cy1 < 1:  # jittered off the image
            cx1, cy1, cx2, cy2 = self.loader.crop_box(
                [x1, y1, x2, y2], w, h, dict(img_path=path))
        patch = self.resizer.resize_one(img[cy1:cy2, cx1:cx2])
        if self.rng.random() < self.flip_prob:
            patch = mmcv.imflip(patch, direction='horizontal')
        return patch

    def batch(self, batch_size: int,
              per_class: int = 1) -> Tuple[torch.Tensor, torch.Tensor]:
        """A random batch: ``(N, 3, size, size)`` normalised floats and
        ``(N,)`` class indices.

        ``per_class=1``: crops drawn uniformly. ``per_class=K > 1``:
        ``batch_size // K`` distinct classes (drawn uniformly), ``K``
        crops of each (with repeats if a class has fewer), so that every
        crop has ``K - 1`` others of its class in the batch.
        """
        if per_class <= 1:
            idx = [self.rng.randrange(len(self.crops))
                   for _ in range(batch_size)]
        else:
            by_class = self._by_class
            labels = sorted(by_class)
            num = min(len(labels), max(1, batch_size // per_class))
            idx = []
            for label in self.rng.sample(labels, num):
                pool = by_class[label]
                idx += ([self.rng.choice(pool) for _ in range(per_class)]
                        if len(pool) < per_class
                        else self.rng.sample(pool, per_class))
        patches = np.stack([self.crop(i) for i in idx])
        if self.bgr_to_rgb:
            patches = patches[..., ::-1]
        x = torch.from_numpy(np.ascontiguousarray(patches)).permute(
            0, 3, 1, 2).float()
        x = (x - self.mean) / self.std
        y = torch.tensor([self.crops[i][2] for i in idx], dtype=torch.long)
        return x, y


def supervised_contrastive_loss(z: torch.Tensor, labels: torch.Tensor,
                                temperature: float = 0.1) -> torch.Tensor:
    """Supervised contrastive loss over a batch (Khosla et al., 2020,
    the variant that averages over the positives outside the log).

    For each anchor ``i`` with at least one other sample of its label:
    ``-mean_{p in P(i)} log(exp(s_ip) / sum_{a != i} exp(s_ia))`` with
    ``s = cos(z_i, z_a) / temperature``; the mean over those anchors (0,
    still in the graph, when no anchor has a positive).

    Args:
        z (Tensor): ``(N, D)`` embeddings (normalised here).
        labels (Tensor): ``(N,)`` class indices.
        temperature (float): Softmax temperature, > 0.
    """
    if temperature <= 0:
        raise ValueError(f'temperature must be > 0, got {temperature}')
    z = F.normalize(z, dim=1)
    sim = z @ z.t() / temperature
    n = z.shape[0]
    self_mask = torch.eye(n, dtype=torch.bool, device=z.device)
    sim = sim.masked_fill(self_mask, float('-inf'))
    log_prob = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    pos = (labels[:, None] == labels[None, :]) & ~self_mask
    num_pos = pos.sum(1)
    has_pos = num_pos > 0
    if not bool(has_pos.any()):
        return z.sum() * 0.0
    pos_log_prob = log_prob.masked_fill(~pos, 0.0).sum(1)
    return -(pos_log_prob[has_pos] / num_pos[has_pos]).mean()


class BackboneClassifier(nn.Module):
    """The backbone, a global average pool of its last output and a linear
    classifier over the seen classes; with ``cosine_scale > 0`` the logits
    are ``cosine_scale`` x the cosine of the pooled feature and each class
    weight (no bias)."""

    def __init__(self, backbone: nn.Module, channels: int,
                 num_classes: int, cosine_scale: float = 0.0,
                 proj_dims: int = 0) -> None:
        super().__init__()
        self.backbone = backbone
        self.fc = nn.Linear(channels, num_classes, bias=not cosine_scale)
        self.cosine_scale = cosine_scale
        # The projection of the contrastive term (proj_dims > 0), as in
        # SupCon: a two-layer MLP, dropped after pre-training.
        self.proj = nn.Sequential(
            nn.Linear(channels, channels), nn.ReLU(inplace=True),
            nn.Linear(channels, proj_dims)) if proj_dims > 0 else None
        self._pooled: Optional[torch.Tensor] = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.backbone(x)
        last = feats[-1] if isinstance(feats, (list, tuple)) else feats
        pooled = F.adaptive_avg_pool2d(last, 1).flatten(1)
        self._pooled = pooled
        if not self.cosine_scale:
            return self.fc(pooled)
        return self.cosine_scale * F.linear(
            F.normalize(pooled, dim=1), F.normalize(self.fc.weight, dim=1))

    def projection(self) -> torch.Tensor:
        """The projection of the pooled features of the last forward."""
        if self.proj is None or self._pooled is None:
            raise RuntimeError('projection() needs proj_dims > 0 and a '
                               'forward pass first')
        return self.proj(self._pooled)


def _query_settings(cfg: Config) -> Tuple[int, float]:
    pipeline = cfg.train_dataloader.dataset.get('pipeline', [])
    step = _find_transform(pipeline, 'ResizeQueryPatches')
    if step is None:
        raise KeyError('train_dataloader.dataset.pipeline has no '
                       'ResizeQueryPatches step: the crop size of the '
                       'pre-training is the query size it sets.')
    return int(step.get('size', 128)), float(step.get('flip_prob', 0.0))


def pretrain_backbone(cfg: Config, out: str, iters: int = 2000,
                      batch_size: int = 64, lr: float = 2e-3,
                      weight_decay: float = 0.05, seed: int = 0,
                      cosine_scale: float = 0.0,
                      supcon_weight: float = 0.0,
                      supcon_temperature: float = 0.1,
                      per_class: int = 4,
                      log_every: int = 100,
                      log: Callable[[str], None] = print) -> Dict[str, float]:
    """Train ``cfg.model.backbone`` to classify seen-class crops and save
    its state dict to ``out``.

    Args:
        cfg (Config): A one-shot detector config (its training dataset,
            query size and data preprocessor are used).
        out (str): Output ``.pth`` path.
        iters (int): Optimiser steps (AdamW, cosine decay to 0).
        batch_size (int): Crops per step.
        lr (float): Peak learning rate.
        weight_decay (float): AdamW weight decay.
        seed (int): Seed of the model initialisation and of the crops.
        cosine_scale (float): 0 (default) for a linear classifier, > 0 for
            a cosine one with this scale (see :class:`BackboneClassifier`).
        supcon_weight (float): 0 (default): cross-entropy only. > 0: add
            this weight x :func:`supervised_contrastive_loss` of a
            projection (2-layer MLP to 64 dims) of the pooled feature,
            over batches of ``batch_size // per_class`` classes x
            ``per_class`` crops.
        supcon_temperature (float): Its temperature.
        per_class (int): Crops per class in a batch with the contrastive
            term (ignored without it: crops are drawn uniformly).
        log_every (int): Log the mean loss/accuracy every so many steps.
        log (callable): Where log lines go.

    Returns:
        dict: ``first_loss`` and ``last_loss`` (means of the first and last
        ``log_every`` steps), ``last_acc``, ``num_crops``, ``num_classes``
        and ``seconds``.
    """
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=True)
    import oneshot  # noqa: F401  (registers the project's modules)

    crops, classes = seen_crops(cfg)
    size, flip_prob = _query_settings(cfg)
    pre = cfg.model.get('data_preprocessor', {})
    sampler = CropSampler(
        crops, size, pre.get('mean', [0., 0., 0.]),
        pre.get('std', [1., 1., 1.]), bgr_to_rgb=pre.get('bgr_to_rgb', False),
        flip_prob=flip_prob, seed=seed)
    torch.manual_seed(seed)
    backbone_cfg = cfg.model.backbone.copy()
    backbone_cfg.pop('init_cfg', None)  # pre-training starts from scratch
    backbone = MODELS.build(backbone_cfg)
    backbone.init_weights()
    with torch.no_grad():
        probe = backbone(torch.zeros(1, 3, size, size))
    channels = (probe[-1] if isinstance(probe, (list, tuple))
                else probe).shape[1]
    if supcon_weight < 0:
        raise ValueError(f'supcon_weight must be >= 0, got {supcon_weight}')
    if supcon_weight and per_class < 2:
        raise ValueError('the contrastive term needs per_class >= 2 crops '
                         f'of a class in a batch, got {per_class}')
    model = BackboneClassifier(backbone, channels, len(classes),
                               cosine_scale=cosine_scale,
                               proj_dims=64 if supcon_weight else 0)
    draw = per_class if supcon_weight else 1
    optim = torch.optim.AdamW(model.parameters(), lr=lr,
                              weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda i: 0.5 * (1 + math.cos(math.pi * i / iters)))
    log(f'[pretrain] {len(crops)} crops of {len(classes)} seen classes, '
        f'{size}x{size} px, {iters} steps x {batch_size}')
    start = time.time()
    losses: List[float] = []
    correct: List[float] = []
    first_loss = None
    model.train()
    for step in range(1, iters + 1):
        x, y = sampler.batch(batch_size, per_class=draw)
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        if supcon_weight:
            loss = loss + supcon_weight * supervised_contrastive_loss(
                model.projection(), y, supcon_temperature)
        optim.zero_grad()
        loss.backward()
        optim.step()
        sched.step()
        losses.append(loss.item())
        correct.append((logits.argmax(1) == y).float().mean().item())
        if step % log_every == 0 or step == iters:
            mean_loss = float(np.mean(losses))
            if first_loss is None:
                first_loss = mean_loss
            log(f'[pretrain] step {step}/{iters}  loss {mean_loss:.4f}  '
                f'acc {np.mean(correct):.3f}  '
                f'{time.time() - start:.0f} s')
            last_loss, last_acc = mean_loss, float(np.mean(correct))
            losses, correct = [], []
    state = {k: v.detach().clone()
             for k, v in model.backbone.state_dict().items()}
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    torch.save(dict(
        state_dict=state,
        meta=dict(pretrained_on='seen-class crops', classes=list(classes),
                  iters=iters, batch_size=batch_size, seed=seed,
                  crop_size=size, cosine_scale=cosine_scale,
                  supcon_weight=supcon_weight)), out)
    return dict(first_loss=first_loss, last_loss=last_loss,
                last_acc=last_acc, num_crops=len(crops),
                num_classes=len(classes), seconds=time.time() - start)

"""Backbone pre-training on seen-class crops (oneshot.apis.backbone_pretrain):
only seen classes are used, the loss falls, and the saved weights are what a
detector config starting from them gets."""
import json
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope
from quickstart_utils import QUICKSTART_CFG, data_overrides, make_synthetic

import oneshot  # noqa: F401
from oneshot.apis.backbone_pretrain import pretrain_backbone, seen_crops


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    return make_synthetic(str(tmp_path_factory.mktemp('pre')), num_train=24,
                          num_val=4)


def _cfg(root):
    cfg = Config.fromfile(QUICKSTART_CFG)
    cfg.merge_from_dict(data_overrides(root))
    return cfg


def test_crops_are_the_seen_query_candidates(data_root):
    cfg = _cfg(data_root)
    crops, classes = seen_crops(cfg)
    assert sorted(classes) == sorted(cfg.seen_classes)
    assert not set(classes) & set(cfg.unseen_classes)
    # Independent count from the json: non-crowd boxes of seen classes
    # whose shorter side reaches query_min_size.
    coco = json.load(open(osp.join(data_root, 'annotations/train.json')))
    names = {c['id']: c['name'] for c in coco['categories']}
    min_size = cfg.train_dataloader.dataset.query_min_size
    expected = sorted(
        (names[a['category_id']], tuple(round(v, 3) for v in a['bbox']))
        for a in coco['annotations']
        if names[a['category_id']] in cfg.seen_classes
        and not a.get('iscrowd', 0) and min(a['bbox'][2:]) >= min_size)
    got = sorted(
        (classes[label], (round(b[0], 3), round(b[1], 3),
                          round(b[2] - b[0], 3), round(b[3] - b[1], 3)))
        for _, b, label in crops)
    assert got == expected
    assert len(got) > 50


def test_unseen_classes_are_refused(data_root):
    cfg = _cfg(data_root)
    cfg.train_dataloader.dataset.episode_classes = 'all'
    with pytest.raises(ValueError, match='unseen classes'):
        seen_crops(cfg)


def test_loss_falls_and_detector_starts_from_the_weights(data_root,
                                                         tmp_path):
    cfg = _cfg(data_root)
    out = str(tmp_path / 'backbone.pth')
    torch.set_num_threads(1)
    # 150 steps: on the seen-only train images of generator v7 the loss
    # fell 3.06 -> 2.57 in 80 steps and -> 1.82 in 150 (one thread).
    res = pretrain_backbone(cfg, out, iters=150, batch_size=32, lr=3e-3,
                            log_every=20, log=lambda s: None)
    assert res['num_classes'] == len(cfg.seen_classes)
    assert res['last_loss'] < 0.8 * res['first_loss'], res

    ckpt = torch.load(out, map_location='cpu', weights_only=True)
    state = ckpt['state_dict']
    init_default_scope('mmdet')
    cfg.model.backbone.init_cfg = dict(type='Pretrained', checkpoint=out)
    model = MODELS.build(cfg.model)
    assert set(state) == set(model.backbone.state_dict())
    before = model.backbone.conv1.weight.detach().clone()
    model.init_weights()
    after = model.backbone.conv1.weight.detach()
    assert not torch.equal(before, after)
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_cosine_classifier_is_scale_free_and_bounded():
    """cosine_scale > 0: logits are scale * cos(pooled feature, class
    weight): bounded by the scale, blind to the feature's norm, no bias."""
    from oneshot.apis.backbone_pretrain import BackboneClassifier

    class Scaled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gain = 1.0

        def forward(self, x):
            return (self.gain * x, )

    torch.manual_seed(0)
    model = BackboneClassifier(Scaled(), channels=3, num_classes=5,
                               cosine_scale=16.0)
    assert model.fc.bias is None
    x = torch.randn(4, 3, 8, 8)
    logits = model(x)
    assert logits.abs().max() <= 16.0 + 1e-4
    pooled = x.mean((2, 3))
    expected = 16.0 * torch.nn.functional.cosine_similarity(
        pooled[:, None], model.fc.weight[None], dim=2)
    torch.testing.assert_close(logits, expected)
    model.backbone.gain = 7.0
    torch.testing.assert_close(model(x), logits)
    linear = BackboneClassifier(Scaled(), channels=3, num_classes=5)
    assert linear.fc.bias is not None
    torch.testing.assert_close(linear(x), linear.fc(pooled))


def test_supervised_contrastive_loss_equals_a_loop_over_anchors():
    """The SupCon value written out anchor by anchor with math on floats."""
    import math

    from oneshot.apis.backbone_pretrain import supervised_contrastive_loss
    torch.manual_seed(0)
    z = torch.randn(6, 5, dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1, 1, 2])  # the last has no positive
    t = 0.2
    zn = [v / math.sqrt(sum(float(c) ** 2 for c in v)) for v in z]

    def s(i, j):
        return sum(float(a) * float(b) for a, b in zip(zn[i], zn[j])) / t

    terms = []
    for i in range(6):
        pos = [p for p in range(6) if p != i and labels[p] == labels[i]]
        if not pos:
            continue
        log_den = math.log(sum(math.exp(s(i, a)) for a in range(6)
                               if a != i))
        terms.append(-sum(s(i, p) - log_den for p in pos) / len(pos))
    expected = sum(terms) / len(terms)
    got = supervised_contrastive_loss(z, labels, temperature=t)
    assert float(got) == pytest.approx(expected, rel=1e-9)
    # Scale-free (the embeddings are normalised).
    assert float(supervised_contrastive_loss(3 * z, labels, t)) == \
        pytest.approx(expected, rel=1e-9)
    # No anchor with a positive: exactly 0, still in the graph.
    zz = z.clone().requires_grad_(True)
    zero = supervised_contrastive_loss(zz, torch.arange(6), t)
    zero.backward()
    assert float(zero) == 0.0 and zz.grad is not None
    with pytest.raises(ValueError, match='temperature'):
        supervised_contrastive_loss(z, labels, temperature=0.0)


def test_class_balanced_batches_and_contrastive_pretraining(data_root,
                                                            tmp_path):
    """per_class=K batches hold batch_size // K classes x K crops; with
    supcon_weight > 0 the contrastive term alone reaches the projection and
    the backbone, the total loss falls, and only backbone keys are
    saved."""
    from oneshot.apis.backbone_pretrain import (BackboneClassifier,
                                                CropSampler,
                                                supervised_contrastive_loss)
    cfg = _cfg(data_root)
    crops, classes = seen_crops(cfg)
    sampler = CropSampler(crops, 40, [0.] * 3, [1.] * 3, seed=0)
    x, y = sampler.batch(32, per_class=4)
    assert x.shape == (32, 3, 40, 40)
    counts = torch.bincount(y)
    assert sorted(counts[counts > 0].tolist()) == [4] * 8

    init_default_scope('mmdet')
    backbone_cfg = cfg.model.backbone.copy()
    backbone_cfg.pop('init_cfg', None)
    model = BackboneClassifier(MODELS.build(backbone_cfg), 128,
                               len(classes), proj_dims=64)
    model(x)
    supervised_contrastive_loss(model.projection(), y).backward()
    assert model.proj[0].weight.grad.abs().sum() > 0
    assert model.backbone.conv1.weight.grad.abs().sum() > 0
    assert model.fc.weight.grad is None  # not part of this term

    torch.set_num_threads(1)
    out = str(tmp_path / 'supcon.pth')
    # One thread, 2026-12-07: cross-entropy + contrastive loss 6.61 ->
    # 5.15 over 150 steps, accuracy 0.06 -> 0.42 (chance 1/24).
    res = pretrain_backbone(cfg, out, iters=150, batch_size=32, lr=3e-3,
                            supcon_weight=1.0, per_class=4, log_every=25,
                            log=lambda s: None)
    assert res['last_loss'] < 0.85 * res['first_loss'], res
    assert res['last_acc'] > 0.2, res
    state = torch.load(out, map_location='cpu', weights_only=True)
    assert not any(k.startswith(('proj', 'fc')) for k in state['state_dict'])
    assert state['meta']['supcon_weight'] == 1.0
    with pytest.raises(ValueError, match='per_class'):
        pretrain_backbone(cfg, out, iters=1, supcon_weight=1.0, per_class=1)

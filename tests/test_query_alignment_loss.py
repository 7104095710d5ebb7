"""QueryAlignmentLoss: the value against a hand computation, its edge cases,
and, in a detector, gradients that reach the backbone from it alone."""
import copy
import math
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.structures import InstanceData

import oneshot  # noqa: F401
from oneshot.models.losses import QueryAlignmentLoss

TINY_CFG = osp.join(osp.dirname(osp.dirname(__file__)),
                    'configs/_base_/models/siamese-faster-rcnn_r18-tiny.py')


@pytest.fixture(scope='module', autouse=True)
def _mmdet_scope():
    register_all_modules(init_default_scope=True)


def _sample(label, boxes, img_id=0):
    sample = DetDataSample(metainfo=dict(episode_label=label, img_id=img_id,
                                         img_shape=(64, 64)))
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor(boxes, dtype=torch.float32).view(-1, 4),
        labels=torch.zeros(len(boxes), dtype=torch.long))
    return sample


def _constant_maps(vectors, size=8):
    """One level: episode i's map holds vectors[i] at every position."""
    v = torch.tensor(vectors, dtype=torch.float32)
    return (v[:, :, None, None].expand(-1, -1, size, size).contiguous(), )


def test_value_equals_hand_computation():
    # Target maps are constant per episode, so a box's embedding is its
    # episode's vector, normalised: r0 = (1, 0), r1 = (0.6, 0.8).
    target = _constant_maps([[2., 0.], [3., 4.]])
    query = _constant_maps([[1., 0.], [0., 1.], [1., 1.]], size=3)
    samples = [_sample(4, [[8., 8., 40., 40.]]),
               _sample(7, [[0., 0., 16., 16.], [20., 20., 60., 50.]]),
               _sample(4, [])]
    loss_fn = QueryAlignmentLoss(strides=[8], temperature=0.5)
    got = loss_fn(target, query, samples)['loss_query_align']

    t = 0.5
    q = [(1., 0.), (0., 1.), (1 / math.sqrt(2), 1 / math.sqrt(2))]
    labels = [4, 7, 4]
    boxes = [((1., 0.), 4), ((0.6, 0.8), 7), ((0.6, 0.8), 7)]
    expected = []
    for r, label in boxes:
        logits = [(r[0] * qj[0] + r[1] * qj[1]) / t for qj in q]
        pos = sum(math.exp(z) for z, c in zip(logits, labels) if c == label)
        expected.append(-math.log(pos / sum(math.exp(z) for z in logits)))
    assert got.item() == pytest.approx(sum(expected) / 3, rel=1e-5)


def test_weight_and_degenerate_batches():
    target = _constant_maps([[1., 0.], [0., 1.]])
    query = _constant_maps([[1., 0.], [0., 1.]], size=3)
    samples = [_sample(1, [[0., 0., 30., 30.]]),
               _sample(2, [[5., 5., 40., 40.]])]
    one = QueryAlignmentLoss([8])(target, query, samples)['loss_query_align']
    three = QueryAlignmentLoss([8], loss_weight=3.)(
        target, query, samples)['loss_query_align']
    assert three.item() == pytest.approx(3 * one.item(), rel=1e-6)
    assert one.item() > 0
    # One class in the whole batch: nothing to contrast, exactly zero.
    same = [_sample(1, [[0., 0., 30., 30.]]), _sample(1, [[5., 5., 40., 40.]])]
    assert QueryAlignmentLoss([8])(target, query, same)[
        'loss_query_align'].item() == pytest.approx(0., abs=1e-6)
    # No box at all: zero, but still a tensor in the graph.
    feats = (target[0].clone().requires_grad_(), )
    empty = QueryAlignmentLoss([8])(feats, query, [_sample(1, []),
                                                   _sample(2, [])])
    empty['loss_query_align'].backward()
    assert empty['loss_query_align'].item() == 0.
    assert feats[0].grad is not None


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match='strides'):
        QueryAlignmentLoss(strides=[])
    with pytest.raises(ValueError, match='temperature'):
        QueryAlignmentLoss(strides=[8], temperature=0.)
    loss_fn = QueryAlignmentLoss(strides=[8, 16])
    target = _constant_maps([[1., 0.]])
    with pytest.raises(ValueError, match='query_align_loss.strides'):
        loss_fn(target, target, [_sample(1, [[0., 0., 8., 8.]])])
    sample = DetDataSample(metainfo=dict(img_id=5))
    sample.gt_instances = InstanceData(bboxes=torch.zeros(0, 4))
    with pytest.raises(KeyError, match='episode_label.*img_id=5'):
        QueryAlignmentLoss([8])(target, target, [sample])


def test_detector_adds_the_loss_and_it_trains_the_backbone():
    cfg = Config.fromfile(TINY_CFG)
    cfg.model.query_align_loss = dict(type='QueryAlignmentLoss',
                                      strides=[8, 16, 32], loss_weight=1.0)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.train()
    gen = torch.Generator().manual_seed(0)
    imgs = [torch.randint(0, 256, (3, 96, 96), generator=gen,
                          dtype=torch.uint8) for _ in range(2)]
    queries = [torch.randint(0, 256, (1, 3, 40, 40), generator=gen,
                             dtype=torch.uint8) for _ in range(2)]
    samples = [_sample(1, [[10., 10., 50., 50.]], img_id=1),
               _sample(2, [[30., 20., 90., 70.]], img_id=2)]
    for s in samples:
        s.set_metainfo(dict(ori_shape=(96, 96), scale_factor=(1., 1.),
                            img_shape=(96, 96)))
    data = model.data_preprocessor(
        dict(inputs=dict(img=imgs, query=queries),
             data_samples=copy.deepcopy(samples)), True)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert 'loss_query_align' in losses and losses['loss_query_align'] > 0
    # Its gradient alone reaches the backbone and the neck, not the heads.
    losses['loss_query_align'].backward()
    for name, module in [('backbone', model.backbone), ('neck', model.neck)]:
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        assert grads and sum(g.abs().sum() for g in grads) > 0, name
    assert all(p.grad is None for p in model.roi_head.parameters())
    assert all(p.grad is None for p in model.matcher.parameters())
    # Without the option the detector's losses are the mmdet ones.
    plain = MODELS.build(Config.fromfile(TINY_CFG).model)
    assert plain.query_align_loss is None

"""BHRL: instance-level hierarchical relation, its RoI head (query RoI
feature once per episode, batched == one by one), the ratio-preserving loss
(group weights, reduction to cross-entropy, empty groups), a short training
of the tiny model and the R50 configs."""
import copy
import os.path as osp
from unittest import mock

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.runner import Runner
from mmengine.structures import InstanceData
from quickstart_utils import data_overrides

import oneshot  # noqa: F401
import oneshot.models.losses  # noqa: F401  (registers RatioPreservingLoss)
import oneshot.models.roi_heads  # noqa: F401  (registers the BHRL heads)
from oneshot.datasets.synthetic import generate_synthetic_dataset
from oneshot.models.losses.ratio_preserving_loss import RatioPreservingLoss
from oneshot.models.roi_heads.bhrl_bbox_head import \
    InstanceHierarchicalRelation

CONFIG_DIR = osp.join(osp.dirname(osp.dirname(__file__)), 'configs')
TINY_BHRL = osp.join(CONFIG_DIR, 'quickstart/bhrl_r18-tiny_synthetic.py')
TINY_SIAMESE = osp.join(CONFIG_DIR,
                        '_base_/models/siamese-faster-rcnn_r18-tiny.py')


@pytest.fixture(scope='module', autouse=True)
def _mmdet_scope():
    register_all_modules(init_default_scope=True)


def _build(cfg_path: str = TINY_BHRL, seed: int = 0):
    cfg = Config.fromfile(cfg_path)
    torch.manual_seed(seed)
    return MODELS.build(cfg.model)


def _uint8(shape, seed):
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, shape, generator=gen, dtype=torch.uint8)


def _sample(img_id, shape=(96, 128), label=3, query_ann_ids=None,
            boxes=((10., 12., 50., 60.), (60., 30., 100., 80.))):
    h, w = shape
    meta = dict(img_id=img_id, img_shape=(h, w), ori_shape=(h, w),
                scale_factor=(1., 1.), episode_label=label,
                episode_id=img_id)
    if query_ann_ids is not None:
        meta['query_ann_ids'] = query_ann_ids
    sample = DetDataSample(metainfo=meta)
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        labels=torch.zeros(len(boxes), dtype=torch.long))
    return sample


def _batch(model, imgs, queries, samples, training=False):
    data = dict(inputs=dict(img=list(imgs), query=list(queries)),
                data_samples=copy.deepcopy(samples))
    return model.data_preprocessor(data, training)


# ------------------------------------------------------------- relations
def test_each_relation_has_its_shape_and_every_branch_gets_gradient():
    torch.manual_seed(0)
    relation = InstanceHierarchicalRelation(
        in_channels=16, relation_channels=8, key_channels=4, out_channels=24)
    target = torch.randn(5, 16, 7, 7, requires_grad=True)
    query = torch.randn(2, 16, 7, 7, requires_grad=True)
    inds = torch.tensor([0, 1, 1, 0, 1])

    query_gap, query_key = relation.encode_query(query)
    assert query_gap.shape == (2, 16, 1, 1)
    assert query_key.shape == (2, 4, 49)
    gap = query_gap[inds]
    contrastive = relation.contrastive_relation(target, gap)
    salient = relation.salient_relation(target, gap)
    attention = relation.attention_relation(target, query[inds],
                                            query_key[inds])
    for out in (contrastive, salient, attention):
        assert out.shape == (5, 8, 7, 7)
    # (a) and (b) differ: one compares, the other correlates.
    assert not torch.allclose(contrastive, salient)

    fused = relation(target, query, inds)
    assert fused.shape == (5, 24, 7, 7)
    (fused * torch.randn_like(fused)).sum().backward()
    assert target.grad.abs().sum() > 0 and query.grad.abs().sum() > 0
    for name in ('contrastive_conv', 'salient_conv', 'target_key_conv',
                 'query_key_conv', 'attention_conv', 'fusion_conv'):
        grads = [p.grad for p in getattr(relation, name).parameters()]
        assert all(g is not None for g in grads), name
        assert sum(g.abs().sum() for g in grads) > 0, name


def test_each_roi_is_related_to_its_own_episode_query():
    torch.manual_seed(0)
    relation = InstanceHierarchicalRelation(16, 8, 4, 24).eval()
    target = torch.randn(4, 16, 7, 7)
    query = torch.randn(3, 16, 7, 7)
    inds = torch.tensor([2, 0, 2, 1])
    with torch.no_grad():
        batched = relation(target, query, inds)
        for roi, episode in enumerate(inds.tolist()):
            single = relation(target[roi:roi + 1], query[episode:episode + 1],
                              torch.zeros(1, dtype=torch.long))
            torch.testing.assert_close(batched[roi:roi + 1], single)
    with pytest.raises(ValueError, match='bbox_head.in_channels'):
        relation(torch.randn(1, 8, 7, 7), query, inds[:1])


# ---------------------------------------------------------------- the loss
def _hand_built_batch():
    """8 RoIs: 2 positives, 2 false positives, 4 true negatives."""
    fg_bg = [
        (2.0, 0.0),   # positive, confident
        (-1.0, 1.0),  # positive, missed
        (1.5, 0.0),   # false positive (fg prob > bg prob)
        (0.5, 0.2),   # false positive
        (-2.0, 1.0),  # true negative
        (0.0, 0.5),   # true negative
        (-0.5, 2.0),  # true negative
        (-1.0, 0.0),  # true negative
    ]
    cls_score = torch.tensor(fg_bg, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1, 1, 1, 1, 1])
    return cls_score, labels


def test_ratio_preserving_weights_give_each_group_its_share():
    cls_score, labels = _hand_built_batch()
    n = len(labels)
    loss_fn = RatioPreservingLoss(alpha=0.25)
    weights = loss_fn.group_weights(cls_score, labels,
                                    torch.ones(n, dtype=torch.bool))
    hard, easy = weights[:4], weights[4:]
    # Positives + false positives share N * alpha, the rest N * (1-alpha).
    torch.testing.assert_close(hard.sum(), torch.tensor(n * 0.25))
    torch.testing.assert_close(easy.sum(), torch.tensor(n * 0.75))
    torch.testing.assert_close(hard, torch.full((4, ), 0.5))
    torch.testing.assert_close(easy, torch.full((4, ), 1.5))

    ce = F.cross_entropy(cls_score, labels, reduction='none')
    loss = loss_fn(cls_score, labels, torch.ones(n), avg_factor=n)
    expected = 0.25 * ce[:4].mean() + 0.75 * ce[4:].mean()
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(
        loss_fn(cls_score, labels, reduction_override='none'), weights * ce)
    torch.testing.assert_close(
        loss_fn(cls_score, labels, reduction_override='sum'),
        (weights * ce).sum())
    loss.backward()
    assert cls_score.grad.abs().sum() > 0


def test_ratio_preserving_loss_is_cross_entropy_at_the_hard_fraction():
    cls_score, labels = _hand_built_batch()
    # 4 of the 8 RoIs are positives or false positives.
    loss = RatioPreservingLoss(alpha=0.5)(cls_score, labels)
    torch.testing.assert_close(loss, F.cross_entropy(cls_score, labels))
    # Ignored RoIs (label weight 0) count in no group.
    weight = torch.tensor([1., 1., 1., 1., 1., 1., 0., 0.])
    loss = RatioPreservingLoss(alpha=4 / 6)(cls_score, labels, weight)
    torch.testing.assert_close(
        loss, F.cross_entropy(cls_score[:6], labels[:6]))


def test_ratio_preserving_loss_with_an_empty_group_stays_finite():
    cls_score, labels = _hand_built_batch()
    loss_fn = RatioPreservingLoss(alpha=0.25)
    # No positives and no false positives: only true negatives.
    easy_scores = cls_score.detach()[4:].clone().requires_grad_()
    only_easy = loss_fn(easy_scores, labels[4:])
    assert torch.isfinite(only_easy)
    torch.testing.assert_close(
        only_easy, F.cross_entropy(easy_scores, labels[4:]))
    only_easy.backward()
    assert torch.isfinite(easy_scores.grad).all()
    # No positives, every negative a false positive.
    fp_scores = cls_score.detach()[2:4]
    only_fp = loss_fn(fp_scores, labels[2:4])
    torch.testing.assert_close(only_fp,
                               F.cross_entropy(fp_scores, labels[2:4]))
    # Positives and negatives, but every negative is a false positive.
    no_easy = loss_fn(cls_score[:4], labels[:4])
    torch.testing.assert_close(no_easy,
                               F.cross_entropy(cls_score[:4], labels[:4]))
    # Nothing counts.
    zero = loss_fn(cls_score, labels, torch.zeros(8))
    assert torch.isfinite(zero) and zero == 0
    with pytest.raises(ValueError, match='alpha'):
        RatioPreservingLoss(alpha=1.0)


def test_ratio_preserving_loss_plugs_into_a_stock_bbox_head():
    cfg = Config.fromfile(TINY_SIAMESE)
    cfg.model.roi_head.bbox_head.loss_cls = dict(
        type='RatioPreservingLoss', alpha=0.25)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).train()
    data = _batch(model, [_uint8((3, 96, 128), 0)],
                  [_uint8((1, 3, 64, 64), 1)], [_sample(1)], training=True)
    losses = model(mode='loss', **data)
    assert torch.isfinite(losses['loss_cls'])


# ------------------------------------------------------------- the RoI head
def test_training_losses_are_finite_without_positive_rois():
    model = _build().train()
    imgs = [_uint8((3, 96, 128), 0), _uint8((3, 96, 128), 1)]
    queries = [_uint8((1, 3, 64, 64), 2), _uint8((1, 3, 64, 64), 3)]
    # No ground truth at all: every sampled RoI is a negative.
    samples = [_sample(1, boxes=()), _sample(2, boxes=())]
    losses = model(mode='loss', **_batch(model, imgs, queries, samples, True))
    total, _ = model.parse_losses(losses)
    assert torch.isfinite(total)
    total.backward()
    relation = model.roi_head.bbox_head.relation
    assert relation.fusion_conv.conv.weight.grad.abs().sum() > 0


class _CountCalls:
    """Counts forward calls of a module and the rows of their inputs."""

    def __init__(self, module):
        self.rows = []
        self._handle = module.register_forward_hook(
            lambda mod, args, out: self.rows.append(args[1].shape[0]))

    def remove(self):
        self._handle.remove()


def test_query_roi_feature_is_computed_once_per_episode():
    model = _build()
    head = model.roi_head
    imgs = [_uint8((3, 96, 128), 0)] * 3
    queries = [_uint8((1, 3, 64, 64), 10 + i) for i in range(3)]
    samples = [_sample(7, query_ann_ids=[i]) for i in range(3)]
    for training in (True, False):
        model.train(training)
        counter = _CountCalls(head.query_roi_layer)
        with mock.patch.object(
                head, 'extract_query_roi_feat',
                wraps=head.extract_query_roi_feat) as extract:
            mode = 'loss' if training else 'predict'
            with torch.set_grad_enabled(training):
                model(mode=mode,
                      **_batch(model, imgs, queries, samples, training))
        counter.remove()
        # One call for the whole batch, one RoI (the whole query) per
        # episode, whatever the number of proposals and FPN levels.
        assert extract.call_count == 1
        assert counter.rows == [3]


def test_query_roi_feature_averages_upsampled_levels():
    head = _build().roi_head
    # Constant maps: upsampling keeps the constant, so the feature is the
    # mean of the levels' constants everywhere.
    levels = [torch.full((2, 64, s, s), float(v))
              for s, v in ((8, 1.0), (4, 2.0), (2, 6.0))]
    levels[0][1] = 4.0
    feat = head.extract_query_roi_feat(levels)
    assert feat.shape == (2, 64, 7, 7)
    torch.testing.assert_close(feat[0], torch.full((64, 7, 7), 3.0))
    torch.testing.assert_close(feat[1], torch.full((64, 7, 7), 4.0))
    with pytest.raises(ValueError, match='finest level first'):
        head.extract_query_roi_feat(levels[::-1])
    with pytest.raises(ValueError, match='target_feats'):
        head.predict(levels, [], [])


def test_many_queries_on_one_image_equal_one_by_one():
    model = _build().eval()
    img = _uint8((3, 96, 128), 0)
    queries = [_uint8((2, 3, 64, 64), 20 + i) for i in range(3)]  # 2-shot
    samples = [_sample(42, label=i, query_ann_ids=[2 * i, 2 * i + 1])
               for i in range(3)]
    with torch.no_grad():
        batched = model(mode='predict', **_batch(
            model, [img.clone() for _ in range(3)], queries, samples))
        singles = [
            model(mode='predict', **_batch(model, [img], [q], [s]))[0]
            for q, s in zip(queries, samples)
        ]
    for ours, single, label in zip(batched, singles, range(3)):
        a, b = ours.pred_instances, single.pred_instances
        assert len(a) == len(b) > 0
        torch.testing.assert_close(a.bboxes, b.bboxes, rtol=1e-4, atol=1e-3)
        torch.testing.assert_close(a.scores, b.scores, rtol=1e-4, atol=1e-5)
        assert (a.labels == label).all()
    assert not torch.equal(batched[0].pred_instances.scores,
                           batched[1].pred_instances.scores)
    with torch.no_grad():
        cls_score, bbox_pred = model(mode='tensor', **_batch(
            model, [img], queries[:1], samples[:1]))[0]
    assert cls_score.shape[1] == 2 and bbox_pred.shape[1] == 4


# ---------------------------------------------------------------- training
def test_tiny_bhrl_training_lowers_the_loss(tmp_path):
    root = str(tmp_path / 'data')
    generate_synthetic_dataset(
        root, num_train=8, num_val=1, seed=0,
        classes=['square-solid', 'square-outline', 'circle-solid',
                 'circle-outline'])
    cfg = Config.fromfile(TINY_BHRL)
    cfg.merge_from_dict(data_overrides(root))
    max_iters = 100
    cfg.merge_from_dict({
        'work_dir': str(tmp_path / 'work'),
        'train_cfg.max_iters': max_iters,
        'train_cfg.val_interval': 10**6,
        'train_dataloader.batch_size': 2,
        'train_dataloader.dataset.split': dict(unseen=[]),
        'default_hooks.checkpoint.interval': 10**6,
        'default_hooks.logger.interval': 1,
    })
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.test_dataloader = cfg.test_cfg = cfg.test_evaluator = None
    cfg.param_scheduler[0].end = 20
    cfg.param_scheduler[1].milestones = [80]
    cfg.param_scheduler[1].end = max_iters
    cfg.randomness = dict(seed=0)
    runner = Runner.from_cfg(cfg)
    runner.train()
    hub = runner.message_hub
    losses = hub.get_scalar('train/loss').data[0]
    cls_losses = hub.get_scalar('train/loss_cls').data[0]
    print('loss first/last 20:', np.mean(losses[:20]), np.mean(losses[-20:]),
          'loss_cls:', np.mean(cls_losses[:20]), np.mean(cls_losses[-20:]))
    assert len(losses) == max_iters
    assert np.isfinite(losses).all()
    assert np.mean(losses[-20:]) < 0.7 * np.mean(losses[:20])
    assert np.mean(cls_losses[-20:]) < np.mean(cls_losses[:20])


# ------------------------------------------------------------ R50 configs
BHRL_CONFIGS = [
    f'bhrl/bhrl_r50-fpn_8xb2-9e_{data}.py' for data in (
        'coco-split1', 'coco-split2', 'coco-split3', 'coco-split4', 'voc')
]


@pytest.mark.parametrize('cfg_name', BHRL_CONFIGS)
def test_bhrl_configs_load_with_paper_settings(cfg_name):
    cfg = Config.fromfile(osp.join(CONFIG_DIR, cfg_name))
    model = cfg.model
    assert model.matcher.type == 'L1DiffMatcher'
    assert model.matcher.out_channels == model.rpn_head.in_channels == 384
    head = model.roi_head.bbox_head
    assert model.roi_head.type == 'BHRLRoIHead'
    assert model.roi_head.bbox_roi_extractor.out_channels == 256
    assert (head.in_channels, head.relation_channels, head.key_channels,
            head.fused_channels, head.fc_out_channels) == (256, 128, 32, 384,
                                                           1024)
    assert head.loss_cls == dict(type='RatioPreservingLoss', alpha=0.25,
                                 loss_weight=1.0)
    assert cfg.train_cfg.max_epochs == 9
    assert cfg.param_scheduler[1].milestones == [6]
    assert cfg.optim_wrapper.optimizer.lr == 0.02
    for loader in (cfg.train_dataloader, cfg.test_dataloader):
        sizes = {t['type']: t for t in loader.dataset.pipeline}
        assert sizes['Resize']['scale'] == (1024, 1024)
        assert sizes['ResizeQueryPatches']['size'] == 192
    expected = 'voc' if cfg_name.endswith('voc.py') else \
        'coco_split' + cfg_name[-4]
    assert cfg.train_dataloader.dataset.split == expected
    assert cfg.test_dataloader.dataset.split == expected


def test_bhrl_r50_builds_and_runs():
    cfg = Config.fromfile(osp.join(CONFIG_DIR, 'bhrl_r50.py'))
    cfg.model.backbone.init_cfg = None
    cfg.model.train_cfg.rpn_proposal.update(nms_pre=200, max_per_img=20)
    cfg.model.train_cfg.rcnn.sampler.num = 16
    cfg.model.test_cfg.rpn.update(nms_pre=200, max_per_img=8)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    imgs = [_uint8((3, 96, 128), 0)]
    queries = [_uint8((1, 3, 64, 64), 1)]
    samples = [_sample(1, query_ann_ids=[2])]
    model.train()
    losses = model(mode='loss', **_batch(model, imgs, queries, samples, True))
    total, _ = model.parse_losses(losses)
    assert torch.isfinite(total)
    model.eval()
    with torch.no_grad():
        result, = model(mode='predict',
                        **_batch(model, imgs, queries, samples))
    assert (result.pred_instances.labels == 3).all()

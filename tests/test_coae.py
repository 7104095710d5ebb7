"""CoAE: co-attention/co-excitation matcher, query-aware RoI head, margin
ranking loss, configs, a short training run and batched prediction."""
import os.path as osp

import numpy as np
import pytest
import quickstart_utils
import torch
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.runner import Runner

import oneshot  # noqa: F401  (registers the oneshot modules)
from oneshot.datasets.synthetic import generate_synthetic_dataset
from oneshot.models.detectors.siamese_base import MatcherOutput
from oneshot.models.losses.margin_ranking_loss import MarginRankingLoss
from oneshot.models.matchers import CoAttentionMatcher

from test_detector import (_BackboneCalls, _assert_same_predictions, _batch,
                           _sample, _uint8)

CONFIG_DIR = osp.join(osp.dirname(osp.dirname(__file__)), 'configs')
TINY_COAE = osp.join(CONFIG_DIR, 'quickstart/coae_r18-tiny_synthetic.py')


@pytest.fixture(scope='module', autouse=True)
def _mmdet_scope():
    register_all_modules(init_default_scope=True)


def _feats(batch=2, channels=32, sizes=((12, 10), (6, 5)), seed=0):
    gen = torch.Generator().manual_seed(seed)
    return tuple(
        torch.randn(batch, channels, h, w, generator=gen) for h, w in sizes)


def _perturb_output_norms(matcher: CoAttentionMatcher, seed: int = 0):
    """Move W and Q away from their zero init so co-attention acts."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in (matcher.target_out, matcher.query_out):
            module.norm.weight.copy_(
                torch.rand(module.norm.weight.shape, generator=gen) + 0.5)
            module.norm.bias.copy_(
                torch.randn(module.norm.bias.shape, generator=gen) * 0.1)


# ---------------------------------------------------------------- matcher
@pytest.mark.parametrize('call_init_weights', [False, True])
def test_co_attention_is_identity_at_initialisation(call_init_weights):
    torch.manual_seed(0)
    matcher = CoAttentionMatcher(32, norm_cfg=dict(type='BN'))
    if call_init_weights:
        matcher.init_weights()  # ConvModule re-inits norms; must stay zero
    matcher.train()  # batch statistics: still exactly zero output
    target, query = _feats(), _feats(seed=1, sizes=((4, 4), (2, 2)))
    out = matcher(target, query)
    assert isinstance(out, MatcherOutput)
    for t, q, rpn, roi, q_out in zip(target, query, out.rpn, out.roi,
                                     out.query):
        # Co-attention adds nothing yet: the RPN sees the target unchanged.
        assert torch.equal(rpn, t)
        co_t, co_q = matcher.co_attention(t, q)
        assert torch.equal(co_t, t) and torch.equal(co_q, q)
        # Co-excitation: both maps re-weighted by one gate in (0, 1).
        gate = matcher.channel_gate(q)[..., None, None]
        torch.testing.assert_close(roi, t * gate)
        torch.testing.assert_close(q_out, q * gate)


def test_co_attention_formula_no_softmax_normalised_by_positions():
    torch.manual_seed(0)
    matcher = CoAttentionMatcher(32, inter_channels=8, reduction=4)
    _perturb_output_norms(matcher)
    matcher.eval()
    t, q = _feats(sizes=((6, 5), ))[0], _feats(seed=1, sizes=((3, 3), ))[0]
    co_t, co_q = matcher.co_attention(t, q)

    def tokens(conv, x):  # (B, N, C')
        return conv(x).flatten(2).transpose(1, 2)

    affinity = torch.einsum('bic,bjc->bij', tokens(matcher.theta, q),
                            tokens(matcher.phi, t))  # (B, Nq=9, Nt=30)
    t_ctx = torch.einsum('bij,bic->bjc', affinity, tokens(matcher.g, q)) / 9
    q_ctx = torch.einsum('bij,bjc->bic', affinity, tokens(matcher.g, t)) / 30
    expected_t = t + matcher.target_out(t_ctx.transpose(1, 2).reshape(
        2, 8, 6, 5))
    expected_q = q + matcher.query_out(q_ctx.transpose(1, 2).reshape(
        2, 8, 3, 3))
    torch.testing.assert_close(co_t, expected_t)
    torch.testing.assert_close(co_q, expected_q)
    # Squeeze-and-co-excitation: one MLP over average- and max-pooled query.
    mlp = matcher.excitation_mlp
    gate = torch.sigmoid(mlp(co_q.mean((2, 3))) + mlp(co_q.amax((2, 3))))
    out = matcher((t, ), (q, ))
    torch.testing.assert_close(out.rpn[0], co_t)
    torch.testing.assert_close(out.roi[0], co_t * gate[..., None, None])
    torch.testing.assert_close(out.query[0], co_q * gate[..., None, None])


def test_matcher_gradients_reach_every_parameter():
    torch.manual_seed(0)
    matcher = CoAttentionMatcher(32, norm_cfg=dict(type='GN', num_groups=4))
    _perturb_output_norms(matcher)
    target = tuple(f.requires_grad_() for f in _feats())
    query = tuple(
        f.requires_grad_() for f in _feats(seed=1, sizes=((4, 4), (2, 2))))
    out = matcher(target, query)
    gen = torch.Generator().manual_seed(3)
    loss = sum((o * torch.randn(o.shape, generator=gen)).sum()
               for maps in out for o in maps)
    loss.backward()
    for name, param in matcher.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    assert all(f.grad.abs().sum() > 0 for f in target + query)


def test_matcher_rejects_bad_inputs_and_settings():
    matcher = CoAttentionMatcher(32)
    with pytest.raises(ValueError, match='in_channels'):
        matcher(_feats(channels=16), _feats(channels=16))
    with pytest.raises(ValueError, match='batch or channels'):
        matcher(_feats(batch=2), _feats(batch=3))
    with pytest.raises(ValueError, match='reduction'):
        CoAttentionMatcher(8, reduction=16)


# ----------------------------------------------------------- ranking loss
def test_ranking_loss_zero_when_ranked_with_margin_positive_otherwise():
    loss = MarginRankingLoss(margin=0.3, loss_weight=3.0)
    labels = torch.tensor([1, 1, 0, 0])
    # Same-label gaps <= 0.05 < 0.3, foreground above background by >= 0.75.
    ranked = torch.tensor([0.9, 0.95, 0.1, 0.15])
    assert loss(ranked, labels) == 0
    # Hand-computed: fg 0.9, bg 0.1 and 0.6. Pairs: (0.9, 0.1) gap 0.8 ok;
    # (0.9, 0.6): 0.7 - 0.3 = 0.4; (0.1, 0.6) same label: 0.5 - 0.3 = 0.2.
    value = loss(torch.tensor([0.9, 0.1, 0.6]), torch.tensor([1, 0, 0]))
    torch.testing.assert_close(value, torch.tensor(3.0 * (0.4 + 0.2) / 3))


def test_ranking_loss_gradient_lifts_foreground_and_lowers_background():
    loss = MarginRankingLoss()
    scores = torch.tensor([0.4, 0.5, 0.45], requires_grad=True)
    labels = torch.tensor([True, False, False])
    value = loss(scores, labels)
    assert value > 0
    value.backward()
    assert scores.grad[0] < 0  # descent raises the foreground score
    assert (scores.grad[1:] > 0).all()  # and lowers the background ones
    # One step of gradient descent improves the ranking.
    with torch.no_grad():
        stepped = scores - 0.1 * scores.grad
    assert loss(stepped, labels) < value


def test_ranking_loss_pairs_only_within_an_image():
    loss = MarginRankingLoss()
    # Each image is perfectly ranked on its own; across images a background
    # score (0.5) exceeds a foreground one (0.2 + ...): must not count.
    scores = torch.tensor([0.95, 0.2, 0.9, 0.1])
    labels = torch.tensor([1, 0, 1, 0])
    groups = torch.tensor([0, 0, 1, 1])
    assert loss(scores, labels, groups) == 0
    cross = torch.tensor([0.3, 0.0, 1.0, 0.5])
    per_image = [loss(cross[:2], labels[:2]), loss(cross[2:], labels[2:])]
    torch.testing.assert_close(
        loss(cross, labels, groups), (per_image[0] + per_image[1]) / 2)


@pytest.mark.parametrize('scores,labels', [
    ([0.9, 0.1, 0.5], [0, 0, 0]),  # background only, scores far apart
    ([0.2, 0.9], [1, 1]),  # foreground only
    ([0.3], [1]),  # a single proposal
    ([], []),  # no proposals
])
def test_ranking_loss_without_both_labels_is_zero_not_nan(scores, labels):
    loss = MarginRankingLoss()
    scores = torch.tensor(scores, requires_grad=True)
    value = loss(scores, torch.tensor(labels, dtype=torch.long))
    assert torch.isfinite(value) and value == 0
    value.backward()
    assert torch.isfinite(scores.grad).all() and (scores.grad == 0).all()


def test_ranking_loss_averages_over_images_with_both_labels():
    loss = MarginRankingLoss()
    scores = torch.tensor([0.4, 0.5, 0.9, 0.1])
    labels = torch.tensor([1, 0, 0, 0])  # image 1 has background only
    groups = torch.tensor([0, 0, 1, 1])
    torch.testing.assert_close(
        loss(scores, labels, groups), loss(scores[:2], labels[:2]))
    with pytest.raises(ValueError, match='margin'):
        MarginRankingLoss(margin=1.5)


# ----------------------------------------------------------- tiny model
def _tiny(seed=0, perturb=True, **model_overrides):
    cfg = Config.fromfile(TINY_COAE)
    cfg.merge_from_dict(dict(model=model_overrides))
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    if perturb:
        _perturb_output_norms(model.matcher, seed)
    return model


def _train_batch(model):
    imgs = [_uint8((3, 96, 128), 0), _uint8((3, 128, 96), 1)]
    queries = [_uint8((1, 3, 64, 64), 2), _uint8((1, 3, 64, 64), 3)]
    samples = [_sample(1, (96, 128), query_ann_ids=[7]),
               _sample(2, (128, 96), query_ann_ids=[8])]
    return _batch(model, imgs, queries, samples, training=True)


def test_detector_gradients_reach_every_new_parameter():
    model = _tiny().train()
    assert type(model.roi_head).__name__ == 'CoAERoIHead'
    losses = model(mode='loss', **_train_batch(model))
    assert {'loss_rpn_cls', 'loss_cls', 'loss_bbox', 'loss_rank'} <= set(
        losses)
    assert losses['loss_rank'] > 0
    total, _ = model.parse_losses(losses)
    total.backward()
    for prefix, module in [('matcher', model.matcher),
                           ('shared_head', model.roi_head.shared_head),
                           ('bbox_head', model.roi_head.bbox_head)]:
        for name, param in module.named_parameters():
            assert param.grad is not None and param.grad.abs().sum() > 0, \
                f'{prefix}.{name}'


def test_ranking_loss_can_be_switched_off():
    model = _tiny(roi_head=dict(bbox_head=dict(loss_rank=None))).train()
    losses = model(mode='loss', **_train_batch(model))
    assert 'loss_rank' not in losses and 'loss_cls' in losses


def test_query_is_encoded_once_per_episode_and_changes_scores():
    model = _tiny().eval()
    img = _uint8((3, 96, 128), 0)
    queries = [_uint8((1, 3, 64, 64), 10 + i) for i in range(2)]
    samples = [_sample(5, query_ann_ids=[i]) for i in range(2)]
    data = _batch(model, [img], queries[:1], samples[:1])
    with torch.no_grad():
        feats = model.extract_episode_feat(data['inputs'],
                                           data['data_samples'])
        proposals = model.rpn_head.predict(feats.matched,
                                           data['data_samples'])[0]
        query_feats = model.extract_query_feat(
            torch.cat([_batch(model, [img], [q], samples[:1])['inputs']
                       ['query'] for q in queries]))
    calls = []
    model.roi_head.shared_head.register_forward_hook(
        lambda module, args, out: calls.append(tuple(args[0].shape)))
    # Two episodes with the same target maps and proposals, two queries.
    roi_maps = tuple(f.expand(2, -1, -1, -1) for f in feats.roi)
    with torch.no_grad():
        cls_score, _ = model.roi_head.forward(
            roi_maps, [proposals, proposals], query_feats=query_feats)
    num_rois = len(proposals)
    assert num_rois > 0 and cls_score.shape == (2 * num_rois, 2)
    # One shared-head pass over the 2 episodes' level-0 query maps (8x8)
    # and one over all RoIs (7x7): the query is not re-encoded per RoI.
    assert calls == [(2, 64, 8, 8), (2 * num_rois, 64, 7, 7)]
    # The same proposals score differently for the two queries.
    assert not torch.allclose(cls_score[:num_rois], cls_score[num_rois:])


def test_bbox_head_rejects_settings_it_cannot_honour():
    head = dict(type='CoAEBBoxHead', in_channels=16, num_classes=1)
    with pytest.raises(ValueError, match='with_avg_pool'):
        MODELS.build(dict(head, with_avg_pool=False))
    with pytest.raises(ValueError, match='softmax'):
        MODELS.build(dict(head, loss_cls=dict(
            type='CrossEntropyLoss', use_sigmoid=True)))
    built = MODELS.build(head)
    with pytest.raises(ValueError, match='query_channels'):
        built(torch.randn(3, 16, 7, 7), torch.randn(3, 8))


def test_batched_k_queries_equal_one_by_one():
    model = _tiny(seed=1).eval()
    img = _uint8((3, 96, 128), 0)
    # K = 2 shots per episode, three episodes on one target image.
    queries = [_uint8((2, 3, 64, 64), 20 + i) for i in range(3)]
    samples = [
        _sample(42, label=i, query_ann_ids=[100 + i, 200 + i])
        for i in range(3)
    ]
    calls = _BackboneCalls(model)
    with torch.no_grad():
        batched = model(
            mode='predict',
            **_batch(model, [img.clone() for _ in range(3)], queries,
                     samples))
        batched_calls = list(calls.sizes)
        singles = [
            model(mode='predict', **_batch(model, [img], [q], [s]))[0]
            for q, s in zip(queries, samples)
        ]
    calls.remove()
    assert sorted(batched_calls) == [1, 6]  # the image once, 3x2 shots
    _assert_same_predictions(batched, singles)
    assert not torch.equal(batched[0].pred_instances.scores,
                           batched[1].pred_instances.scores)


# ------------------------------------------------------------ R50 configs
def test_r50_config_follows_the_paper_and_runs():
    cfg = Config.fromfile(osp.join(CONFIG_DIR, 'coae_r50.py'))
    model_cfg = cfg.model
    assert model_cfg.matcher.type == 'CoAttentionMatcher'
    assert model_cfg.rpn_head.anchor_generator.scales == [4, 8, 16, 32]
    assert model_cfg.rpn_head.anchor_generator.ratios == [0.5, 1.0, 2.0]
    assert (model_cfg.train_cfg.rpn_proposal.nms_pre,
            model_cfg.train_cfg.rpn_proposal.max_per_img) == (12000, 2000)
    assert (model_cfg.test_cfg.rpn.nms_pre,
            model_cfg.test_cfg.rpn.max_per_img) == (6000, 300)
    assert model_cfg.train_cfg.rcnn.sampler.num == 128
    assert model_cfg.train_cfg.rcnn.sampler.pos_fraction == 0.25
    assert model_cfg.test_cfg.rcnn.nms.iou_threshold == 0.3
    assert model_cfg.test_cfg.rcnn.max_per_img == 100
    assert model_cfg.roi_head.bbox_roi_extractor.roi_layer.output_size == 7
    assert cfg.optim_wrapper.optimizer.lr == 0.01
    assert cfg.param_scheduler[1].milestones == [4, 8]

    model_cfg.backbone.init_cfg = None
    model_cfg.roi_head.shared_head.init_cfg = None
    model_cfg.train_cfg.rpn_proposal.update(nms_pre=200, max_per_img=20)
    model_cfg.train_cfg.rcnn.sampler.num = 16
    model_cfg.test_cfg.rpn.update(nms_pre=200, max_per_img=8)
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    head = model.roi_head.bbox_head
    shapes = [tuple(m.weight.shape) for m in head.fc_cls]
    assert shapes == [(8, 4096), (2, 8)]  # Linear(4096, 8) -> Linear(8, 2)
    assert tuple(head.fc_reg.weight.shape) == (4, 2048)
    imgs, queries = [_uint8((3, 96, 128), 0)], [_uint8((1, 3, 64, 64), 1)]
    samples = [_sample(1, query_ann_ids=[2])]
    model.train()
    losses = model(mode='loss',
                   **_batch(model, imgs, queries, samples, True))
    assert 'loss_rank' in losses
    assert torch.isfinite(model.parse_losses(losses)[0])
    model.eval()
    with torch.no_grad():
        result, = model(mode='predict',
                        **_batch(model, imgs, queries, samples))
    assert (result.pred_instances.labels == 3).all()


@pytest.mark.parametrize('data', [
    'coco-split1', 'coco-split2', 'coco-split3', 'coco-split4', 'voc'])
def test_split_configs_switch_only_the_dataset(data):
    cfg = Config.fromfile(
        osp.join(CONFIG_DIR, f'coae/coae_r50-c4_8xb2-12e_{data}.py'))
    reference = Config.fromfile(osp.join(CONFIG_DIR, 'coae_r50.py'))
    assert cfg.model == reference.model
    assert cfg.param_scheduler == reference.param_scheduler
    split = cfg.train_dataloader.dataset.split
    assert split == ('voc' if data == 'voc' else
                     'coco_split' + data[-1])
    assert cfg.test_dataloader.dataset.split == split


# ------------------------------------------------------- short training
def test_short_training_lowers_the_loss(tmp_path, monkeypatch):
    root = str(tmp_path / 'data')
    generate_synthetic_dataset(root, num_train=8, num_val=1, seed=0)
    monkeypatch.setattr(quickstart_utils, 'QUICKSTART_CFG', TINY_COAE)
    iters = 100
    cfg = quickstart_utils.quickstart_cfg(
        root, str(tmp_path / 'work'), max_iters=iters, ckpt_interval=iters)
    assert cfg.model.matcher.type == 'CoAttentionMatcher'
    cfg.randomness = dict(seed=0)
    cfg.train_dataloader.dataset.split = dict(unseen=[])
    cfg.train_dataloader.batch_size = 2
    cfg.param_scheduler[0].end = 20
    runner = Runner.from_cfg(cfg)
    runner.train()
    hub = runner.message_hub
    total = hub.get_scalar('train/loss').data[0]
    rank = hub.get_scalar('train/loss_rank').data[0]
    assert len(total) == iters
    print(f'loss first/last 20 iters: {np.mean(total[:20]):.3f} -> '
          f'{np.mean(total[-20:]):.3f}; loss_rank {np.mean(rank[:20]):.3f} '
          f'-> {np.mean(rank[-20:]):.3f}')
    # The ranking loss is not expected to fall on its own this early: it
    # grows with the number of foreground RoIs (different-label pairs),
    # which rises as the RPN learns; it must stay finite.
    assert np.mean(total[-20:]) < 0.6 * np.mean(total[:20])
    assert np.isfinite(rank).all()

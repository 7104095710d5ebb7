"""AIT: multi-head co-attention matcher, per-proposal transformer, selective
channel attention, the RoI head on CoAE's, configs, a short training run,
batched prediction and the inferencer."""
import os.path as osp

import numpy as np
import pytest
import quickstart_utils
import torch
from mmdet.registry import DATASETS, MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.runner import Runner

import oneshot  # noqa: F401  (registers the oneshot modules)
from oneshot.apis import OneShotInferencer, Query
from oneshot.datasets.synthetic import generate_synthetic_dataset
from oneshot.models.matchers import MatcherOutput, MultiHeadCoAttentionMatcher
from oneshot.models.roi_heads import (AdaptiveImageTransformer,
                                      SelectiveChannelAttention)

from test_detector import (_BackboneCalls, _assert_same_predictions, _batch,
                           _sample, _uint8)

CONFIG_DIR = osp.join(osp.dirname(osp.dirname(__file__)), 'configs')
TINY_AIT = osp.join(CONFIG_DIR, 'quickstart/ait_r18-tiny_synthetic.py')
DATA = ('coco-split1', 'coco-split2', 'coco-split3', 'coco-split4', 'voc')


@pytest.fixture(scope='module', autouse=True)
def _mmdet_scope():
    register_all_modules(init_default_scope=True)


def _feats(batch=2, channels=32, sizes=((12, 10), (6, 5)), seed=0):
    gen = torch.Generator().manual_seed(seed)
    return tuple(
        torch.randn(batch, channels, h, w, generator=gen) for h, w in sizes)


def _perturb_output_norms(matcher: MultiHeadCoAttentionMatcher, seed=0):
    """Move W and Q away from their zero init so co-attention acts."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in (matcher.target_out, matcher.query_out):
            module.norm.weight.copy_(
                torch.rand(module.norm.weight.shape, generator=gen) + 0.5)
            module.norm.bias.copy_(
                torch.randn(module.norm.bias.shape, generator=gen) * 0.1)


def _assert_every_parameter_has_gradient(module, prefix):
    for name, param in module.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, \
            f'{prefix}.{name}'


# ---------------------------------------------------------------- matcher
@pytest.mark.parametrize('call_init_weights', [False, True])
def test_matcher_is_identity_at_initialisation(call_init_weights):
    torch.manual_seed(0)
    matcher = MultiHeadCoAttentionMatcher(32, num_heads=4)
    if call_init_weights:
        matcher.init_weights()  # ConvModule re-inits norms; must stay zero
    matcher.train()
    target, query = _feats(), _feats(seed=1, sizes=((4, 4), (2, 2)))
    out = matcher(target, query)
    assert isinstance(out, MatcherOutput)
    assert out.roi is None  # the RoI head sees what the RPN sees
    for t, q, rpn, q_out in zip(target, query, out.rpn, out.query):
        assert torch.equal(rpn, t) and torch.equal(q_out, q)


def test_matcher_is_multi_head_attention_both_ways():
    torch.manual_seed(0)
    matcher = MultiHeadCoAttentionMatcher(32, embed_dims=16, num_heads=4,
                                          norm_cfg=dict(type='GN',
                                                        num_groups=4))
    _perturb_output_norms(matcher)
    matcher.eval()
    t, q = _feats(sizes=((6, 5), ))[0], _feats(seed=1, sizes=((3, 3), ))[0]
    assert matcher.target_attention.num_heads == 4
    assert matcher.embed_dims == 16

    def tokens(x):  # (B, N, 16)
        return matcher.input_proj(x).flatten(2).transpose(1, 2)

    def attend(mha, a, b):
        # Scaled dot-product softmax attention written out per head.
        w_q, w_k, w_v = mha.in_proj_weight.chunk(3)
        b_q, b_k, b_v = mha.in_proj_bias.chunk(3)

        def heads(x, w, bias):
            return (x @ w.T + bias).unflatten(-1, (4, 4)).transpose(1, 2)

        qh, kh, vh = heads(a, w_q, b_q), heads(b, w_k, b_k), heads(
            b, w_v, b_v)
        weights = (qh @ kh.transpose(-1, -2) / 2.0).softmax(-1)
        out = (weights @ vh).transpose(1, 2).flatten(2)
        return mha.out_proj(out)

    t_ctx = attend(matcher.target_attention, tokens(t), tokens(q))
    q_ctx = attend(matcher.query_attention, tokens(q), tokens(t))
    expected_t = t + matcher.target_out(
        t_ctx.transpose(1, 2).reshape(2, 16, 6, 5))
    expected_q = q + matcher.query_out(
        q_ctx.transpose(1, 2).reshape(2, 16, 3, 3))
    out = matcher((t, ), (q, ))
    torch.testing.assert_close(out.rpn[0], expected_t)
    torch.testing.assert_close(out.query[0], expected_q)


def test_matcher_gradients_reach_every_parameter():
    torch.manual_seed(0)
    matcher = MultiHeadCoAttentionMatcher(
        32, num_heads=4, norm_cfg=dict(type='GN', num_groups=4))
    _perturb_output_norms(matcher)
    target = tuple(f.requires_grad_() for f in _feats())
    query = tuple(
        f.requires_grad_() for f in _feats(seed=1, sizes=((4, 4), (2, 2))))
    out = matcher(target, query)
    gen = torch.Generator().manual_seed(3)
    loss = sum((o * torch.randn(o.shape, generator=gen)).sum()
               for o in out.rpn + out.query)
    loss.backward()
    _assert_every_parameter_has_gradient(matcher, 'matcher')
    assert all(f.grad.abs().sum() > 0 for f in target + query)


def test_matcher_rejects_bad_inputs_and_settings():
    matcher = MultiHeadCoAttentionMatcher(32, num_heads=4)
    with pytest.raises(ValueError, match='in_channels'):
        matcher(_feats(channels=16), _feats(channels=16))
    with pytest.raises(ValueError, match='batch or channels'):
        matcher(_feats(batch=2), _feats(batch=3))
    with pytest.raises(ValueError, match='num_heads'):
        MultiHeadCoAttentionMatcher(32, embed_dims=20, num_heads=8)


# ------------------------------------------------------------ transformer
def _transformer(**kwargs):
    torch.manual_seed(0)
    args = dict(in_channels=16, embed_dims=8, num_heads=2,
                feedforward_channels=24)
    args.update(kwargs)
    return AdaptiveImageTransformer(**args)


def test_transformer_shapes_and_paper_sizes():
    model = AdaptiveImageTransformer()  # the paper's sizes are the defaults
    assert tuple(model.query_proj.weight.shape) == (512, 1024, 1, 1)
    assert tuple(model.proposal_proj.weight.shape) == (512, 1024, 1, 1)
    assert tuple(model.output_proj.weight.shape) == (1024, 512, 1, 1)
    assert len(model.encoder_layers) == len(model.decoder_layers) == 1
    layer = model.decoder_layers[0]
    assert layer.self_attention.num_heads == 8
    assert layer.cross_attention.attention.num_heads == 8
    assert layer.cross_attention.ffn.feedforward_channels == 2048
    assert layer.dropout.p == 0.1
    small = _transformer().eval()
    proposals = torch.randn(5, 16, 7, 7)
    query = torch.randn(2, 16, 8, 8)
    memory = small.encode_query(query)
    assert memory.tokens.shape == memory.pos.shape == (2, 64, 8)
    out = small.translate(proposals, memory, torch.tensor([0, 1, 1, 0, 1]))
    assert out.shape == (5, 16, 7, 7)
    # Empty proposal sets keep the shape.
    assert small.translate(proposals[:0], memory,
                           torch.zeros(0, dtype=torch.long)).shape == (
                               0, 16, 7, 7)
    with pytest.raises(ValueError, match='in_channels'):
        small.encode_query(torch.randn(2, 8, 8, 8))
    with pytest.raises(ValueError, match='one episode per proposal'):
        small.translate(proposals, memory, torch.tensor([0, 1]))


def test_translation_depends_on_the_query_and_equals_one_by_one():
    model = _transformer().eval()
    gen = torch.Generator().manual_seed(1)
    proposals = torch.randn(6, 16, 7, 7, generator=gen)
    query = torch.randn(3, 16, 8, 8, generator=gen)
    # Unsorted episodes, one episode (2) with a single proposal.
    inds = torch.tensor([1, 0, 1, 2, 0, 1])
    with torch.no_grad():
        batched = model.translate(proposals, model.encode_query(query), inds)
        singles = torch.cat([
            model(proposals[i:i + 1], query[inds[i]:inds[i] + 1])
            for i in range(len(inds))
        ])
        other = model.translate(proposals, model.encode_query(query.flip(0)),
                                inds)
    torch.testing.assert_close(batched, singles, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(batched, other, atol=1e-3)


def test_transformer_gradients_reach_every_parameter():
    model = _transformer().train()
    proposals = torch.randn(4, 16, 7, 7, requires_grad=True)
    query = torch.randn(2, 16, 8, 8, requires_grad=True)
    out = model(proposals, query, torch.tensor([0, 1, 1, 0]))
    (out * torch.randn(out.shape)).sum().backward()
    _assert_every_parameter_has_gradient(model, 'transformer')
    assert proposals.grad.abs().sum() > 0 and query.grad.abs().sum() > 0


# ------------------------------------------------- selective attention
def test_selective_channel_attention_mixes_proposal_and_translation():
    torch.manual_seed(0)
    attention = SelectiveChannelAttention(16, reduction=4)
    p, t = torch.randn(3, 16, 7, 7), torch.randn(3, 16, 7, 7)
    query = torch.randn(2, 16, 8, 8)
    inds = torch.tensor([0, 1, 1])
    code = attention.encode_query(query)
    assert code.shape == (2, 4)
    out = attention(p, t, code, inds)
    assert out.shape == p.shape
    # Per (proposal, channel) a convex mix: out = a * p + (1 - a) * t with
    # a in (0, 1), the same at every position.
    a = (out - t) / (p - t)
    assert ((a > 0) & (a < 1)).all()
    torch.testing.assert_close(a, a[..., :1, :1].expand_as(a), atol=1e-3,
                               rtol=1e-3)
    # The same proposal selects differently for another query.
    other = attention(p, t, code.flip(0), inds)
    assert not torch.allclose(out, other)
    # Identical branches pass through unchanged.
    torch.testing.assert_close(attention(p, p, code, inds), p)
    with pytest.raises(ValueError, match='shape of proposals'):
        attention(p, t[:, :8], code, inds)
    with pytest.raises(ValueError, match='channel_attention.channels'):
        attention(p[:, :8], t[:, :8], code, inds)
    with pytest.raises(ValueError, match='reduction'):
        SelectiveChannelAttention(8, reduction=16)


def test_selective_channel_attention_gradients_reach_every_parameter():
    torch.manual_seed(0)
    attention = SelectiveChannelAttention(16, reduction=4)
    p, t = torch.randn(3, 16, 7, 7), torch.randn(3, 16, 7, 7)
    code = attention.encode_query(torch.randn(2, 16, 8, 8))
    out = attention(p, t, code, torch.tensor([0, 1, 1]))
    (out * torch.randn(out.shape)).sum().backward()
    _assert_every_parameter_has_gradient(attention, 'channel_attention')


# ----------------------------------------------------------- tiny model
def _tiny(seed=0, **model_overrides):
    cfg = Config.fromfile(TINY_AIT)
    cfg.merge_from_dict(dict(model=model_overrides))
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
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
    assert type(model.roi_head).__name__ == 'AITRoIHead'
    assert type(model.matcher).__name__ == 'MultiHeadCoAttentionMatcher'
    assert type(model.roi_head.bbox_head).__name__ == 'CoAEBBoxHead'
    losses = model(mode='loss', **_train_batch(model))
    assert {'loss_rpn_cls', 'loss_cls', 'loss_bbox', 'loss_rank'} <= set(
        losses)
    assert losses['loss_rank'] > 0
    total, _ = model.parse_losses(losses)
    total.backward()
    head = model.roi_head
    for prefix, module in [('matcher', model.matcher),
                           ('transformer', head.transformer),
                           ('channel_attention', head.channel_attention),
                           ('shared_head', head.shared_head),
                           ('bbox_head', head.bbox_head)]:
        _assert_every_parameter_has_gradient(module, prefix)


def test_query_only_work_runs_once_per_episode():
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
        query_feats = model.match(
            tuple(f.expand(2, -1, -1, -1) for f in feats.target),
            model.extract_query_feat(
                torch.cat([_batch(model, [img], [q], samples[:1])['inputs']
                           ['query'] for q in queries]))).query
    head = model.roi_head
    calls = {}

    def record(name, module):
        module.register_forward_hook(
            lambda m, args, out: calls.setdefault(name, []).append(
                tuple(args[0].shape)))

    record('query_proj', head.transformer.query_proj)
    record('encoder', head.transformer.encoder_layers[0])
    record('proposal_proj', head.transformer.proposal_proj)
    record('cross_attention', head.transformer.decoder_layers[0]
           .cross_attention)
    record('squeeze_query', head.channel_attention.squeeze_query)
    record('shared_head', head.shared_head)
    # Two episodes with the same target maps and proposals, two queries.
    roi_maps = tuple(f.expand(2, -1, -1, -1) for f in feats.roi)
    with torch.no_grad():
        cls_score, _ = head.forward(roi_maps, [proposals, proposals],
                                    query_feats=query_feats)
    num_rois = len(proposals)
    assert num_rois > 1 and cls_score.shape == (2 * num_rois, 2)
    q_shape = tuple(query_feats[0].shape)  # (2, 64, 8, 8)
    assert q_shape[0] == 2
    # The query is projected, encoded and squeezed once for the 2 episodes
    # (2 rows), not once per RoI; the proposals take the per-RoI path.
    assert calls['query_proj'] == [q_shape]
    assert calls['encoder'] == [(2, 64, 32)]  # (B, h*w, D)
    assert calls['squeeze_query'] == [(2, 64)]
    assert calls['proposal_proj'] == [(2 * num_rois, 64, 7, 7)]
    # Cross-attention: one sequence per episode holding all its RoIs.
    assert calls['cross_attention'] == [(2, num_rois * 49, 32)]
    # Shared head: once over the 2 query maps, once over all RoIs.
    assert calls['shared_head'] == [q_shape, (2 * num_rois, 64, 7, 7)]
    # The same proposals score differently for the two queries.
    assert not torch.allclose(cls_score[:num_rois], cls_score[num_rois:])


def test_roi_head_rejects_mismatched_widths():
    cfg = Config.fromfile(TINY_AIT)
    cfg.model.roi_head.transformer.in_channels = 32
    with pytest.raises(ValueError, match='transformer.in_channels'):
        MODELS.build(cfg.model)


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
    # The cached path (predict_matched on precomputed features) agrees.
    data = _batch(model, [img.clone() for _ in range(3)], queries, samples)
    with torch.no_grad():
        target = model.extract_feat(data['inputs']['img'])
        query = model.extract_query_feat(data['inputs']['query'])
        cached = model.predict_with_feats(target, query,
                                          data['data_samples'])
    _assert_same_predictions(cached, singles)


# ------------------------------------------------------------ R50 configs
def test_r50_config_follows_the_paper_and_runs():
    cfg = Config.fromfile(osp.join(CONFIG_DIR, 'ait_r50.py'))
    coae = Config.fromfile(osp.join(CONFIG_DIR, 'coae_r50.py'))
    model_cfg = cfg.model
    # CoAE's detector, sampling, classifier and ranking loss unchanged.
    for key in ('backbone', 'rpn_head', 'train_cfg', 'test_cfg'):
        assert model_cfg[key] == coae.model[key], key
    for key in ('bbox_roi_extractor', 'shared_head', 'bbox_head'):
        assert model_cfg.roi_head[key] == coae.model.roi_head[key], key
    assert model_cfg.roi_head.bbox_head.loss_rank.margin == 0.3
    assert cfg.param_scheduler == coae.param_scheduler
    assert model_cfg.matcher.type == 'MultiHeadCoAttentionMatcher'
    assert model_cfg.matcher.num_heads == 8
    transformer = model_cfg.roi_head.transformer
    assert (transformer.in_channels, transformer.embed_dims,
            transformer.num_heads, transformer.feedforward_channels,
            transformer.num_encoder_layers, transformer.num_decoder_layers,
            transformer.dropout) == (1024, 512, 8, 2048, 1, 1, 0.1)

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


@pytest.mark.parametrize('data', DATA)
def test_split_configs_switch_only_the_dataset(data):
    cfg = Config.fromfile(
        osp.join(CONFIG_DIR, f'ait/ait_r50-c4_8xb2-12e_{data}.py'))
    reference = Config.fromfile(osp.join(CONFIG_DIR, 'ait_r50.py'))
    coae = Config.fromfile(
        osp.join(CONFIG_DIR, f'coae/coae_r50-c4_8xb2-12e_{data}.py'))
    assert cfg.model == reference.model
    assert cfg.param_scheduler == reference.param_scheduler
    split = cfg.train_dataloader.dataset.split
    assert split == ('voc' if data == 'voc' else 'coco_split' + data[-1])
    assert cfg.test_dataloader.dataset.split == split
    # Data and pipelines are CoAE's for the same split.
    assert cfg.train_dataloader == coae.train_dataloader
    assert cfg.test_dataloader == coae.test_dataloader


@pytest.mark.parametrize('name', [
    'ait_r18-tiny_synthetic.py', 'ait_r18-tiny_glyphs.py',
    'ait_r18-tiny_glyphs-pretrained.py'
])
def test_quickstart_configs_are_coae_quickstarts_with_ait_pieces(name):
    cfg = Config.fromfile(osp.join(CONFIG_DIR, 'quickstart', name))
    coae = Config.fromfile(
        osp.join(CONFIG_DIR, 'quickstart', name.replace('ait', 'coae')))
    assert cfg.model.roi_head.type == 'AITRoIHead'
    assert cfg.model.matcher.type == 'MultiHeadCoAttentionMatcher'
    for key in ('train_dataloader', 'test_dataloader', 'train_cfg',
                'param_scheduler'):
        assert cfg[key] == coae[key], key
    assert cfg.model.backbone == coae.model.backbone


# ------------------------------------------------------- short training
def test_short_training_lowers_the_loss(tmp_path, monkeypatch):
    root = str(tmp_path / 'data')
    generate_synthetic_dataset(root, num_train=8, num_val=1, seed=0)
    monkeypatch.setattr(quickstart_utils, 'QUICKSTART_CFG', TINY_AIT)
    iters = 100
    cfg = quickstart_utils.quickstart_cfg(
        root, str(tmp_path / 'work'), max_iters=iters, ckpt_interval=iters)
    assert cfg.model.roi_head.type == 'AITRoIHead'
    cfg.randomness = dict(seed=0)
    cfg.train_dataloader.dataset.split = dict(unseen=[])
    cfg.train_dataloader.batch_size = 2
    cfg.param_scheduler[0].end = 20
    runner = Runner.from_cfg(cfg)
    runner.train()
    hub = runner.message_hub
    total = hub.get_scalar('train/loss').data[0]
    cls = hub.get_scalar('train/loss_cls').data[0]
    assert len(total) == iters
    print(f'loss first/last 20 iters: {np.mean(total[:20]):.3f} -> '
          f'{np.mean(total[-20:]):.3f}; loss_cls {np.mean(cls[:20]):.3f} '
          f'-> {np.mean(cls[-20:]):.3f}')
    assert np.mean(total[-20:]) < 0.6 * np.mean(total[:20])
    assert np.isfinite(hub.get_scalar('train/loss_rank').data[0]).all()


# ------------------------------------------------------------ inferencer
def test_inferencer_equals_detector_predict(tmp_path):
    root = str(tmp_path / 'data')
    generate_synthetic_dataset(root, num_train=2, num_val=2, seed=3)
    cfg = Config.fromfile(TINY_AIT)
    cfg.merge_from_dict(quickstart_utils.data_overrides(root))
    model = _tiny()
    ckpt = str(tmp_path / 'model.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), ckpt)
    inferencer = OneShotInferencer(cfg, ckpt, device='cpu')
    ds_cfg = cfg.test_dataloader.dataset.copy()
    ds_cfg.episode_classes = 'all'
    dataset = DATASETS.build(ds_cfg)
    dataset.set_run(0)
    img_path = dataset.get_data_info(0)['img_path']
    indices = [i for i in range(len(dataset))
               if dataset.get_data_info(i)['img_path'] == img_path]
    with torch.no_grad():
        expected = inferencer.model.test_step(
            pseudo_collate([dataset[i] for i in indices]))
    queries = [Query(q['img_path'], q['bbox']) for q in (
        dataset.get_data_info(i)['query_infos'][0] for i in indices)]
    (result, ) = inferencer(img_path, queries)
    assert len(result['detections']) == len(indices) > 0
    for exp, got in zip(expected, result['detections']):
        inst = exp.pred_instances
        order = torch.argsort(inst.scores, descending=True, stable=True)
        assert len(got['scores']) == len(order) > 0
        np.testing.assert_allclose(got['scores'], inst.scores[order].numpy(),
                                   rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(got['bboxes'], inst.bboxes[order].numpy(),
                                   rtol=1e-4, atol=1e-3)

"""SiameseTwoStageDetector on tiny models: losses, gradients, predictions,
sharing of backbone passes, K-shot fusion, query-aware RoI head hook and the
R50 method configs."""
import copy
import os.path as osp
from typing import List, Optional

import pytest
import torch
from mmdet.models.roi_heads import StandardRoIHead
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.structures import InstanceData

import oneshot  # noqa: F401  (registers the oneshot modules)

CONFIG_DIR = osp.join(osp.dirname(osp.dirname(__file__)), 'configs')
TINY_CFG = osp.join(CONFIG_DIR, '_base_/models/siamese-faster-rcnn_r18-tiny.py')


@pytest.fixture(scope='module', autouse=True)
def _mmdet_scope():
    # Configs name types without a scope; mmdet's scope resolves them
    # (the runtime config sets default_scope='mmdet' in real runs).
    register_all_modules(init_default_scope=True)


def _build(cfg_path: str = TINY_CFG, seed: int = 0, **model_overrides):
    cfg = Config.fromfile(cfg_path)
    cfg.merge_from_dict(dict(model=model_overrides))
    torch.manual_seed(seed)
    return MODELS.build(cfg.model)


def _sample(img_id: int,
            shape=(96, 128),
            label: int = 3,
            query_ann_ids: Optional[List[int]] = None,
            boxes=((10., 12., 50., 60.), (60., 30., 100., 80.)),
            scale: float = 1.0) -> DetDataSample:
    h, w = shape
    meta = dict(
        img_id=img_id,
        img_shape=(h, w),
        ori_shape=(round(h / scale), round(w / scale)),
        scale_factor=(scale, scale),
        episode_label=label,
        episode_id=img_id)
    if query_ann_ids is not None:
        meta['query_ann_ids'] = query_ann_ids
    sample = DetDataSample(metainfo=meta)
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor(boxes, dtype=torch.float32),
        labels=torch.zeros(len(boxes), dtype=torch.long))
    return sample


def _uint8(shape, seed):
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, shape, generator=gen, dtype=torch.uint8)


def _batch(model, imgs, queries, samples, training=False):
    data = dict(
        inputs=dict(img=list(imgs), query=list(queries)),
        data_samples=copy.deepcopy(samples))
    return model.data_preprocessor(data, training)


class _BackboneCalls:
    """Records the batch size of every backbone forward."""

    def __init__(self, model):
        self.sizes: List[int] = []
        self._handle = model.backbone.register_forward_hook(
            lambda module, args, out: self.sizes.append(args[0].shape[0]))

    def remove(self):
        self._handle.remove()


# The CAT variant of the tiny model, as documented in its config.
TINY_CAT = dict(
    matcher=dict(
        _delete_=True,
        type='CrossAttentionMatcher',
        in_channels=64,
        embed_dims=32,
        num_heads=4,
        feedforward_channels=64,
        num_layers=1))


# --------------------------------------------------------------- training
@pytest.mark.parametrize('overrides', [dict(), TINY_CAT],
                         ids=['l1-diff', 'cross-attention'])
def test_loss_is_finite_and_gradients_reach_both_paths(overrides):
    model = _build(**overrides)
    assert type(model.matcher).__name__ == overrides.get(
        'matcher', dict(type='L1DiffMatcher'))['type']
    model.train()
    imgs = [_uint8((3, 96, 128), 0), _uint8((3, 128, 96), 1)]
    queries = [_uint8((1, 3, 64, 64), 2), _uint8((1, 3, 64, 64), 3)]
    samples = [_sample(1, (96, 128), query_ann_ids=[7]),
               _sample(2, (128, 96), query_ann_ids=[8])]
    data = _batch(model, imgs, queries, samples, training=True)
    img = data['inputs']['img'].requires_grad_()
    query = data['inputs']['query'].requires_grad_()

    losses = model.loss(dict(img=img, query=query), data['data_samples'])
    assert {'loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls',
            'loss_bbox'} <= set(losses)
    total, _ = model.parse_losses(losses)
    assert torch.isfinite(total)
    total.backward()

    # The backbone is the only way from the inputs to the losses, so
    # gradients on both input tensors show it is trained through the
    # target path and the query path.
    assert img.grad.abs().sum() > 0
    assert query.grad.abs().sum() > 0
    for name, module in [('matcher', model.matcher),
                         ('backbone', model.backbone),
                         ('neck', model.neck)]:
        grads = [p.grad for p in module.parameters() if p.requires_grad]
        assert grads and all(g is not None for g in grads), name
        assert sum(g.abs().sum() for g in grads) > 0, name


def test_loss_rejects_multi_class_ground_truth():
    model = _build()
    sample = _sample(1, query_ann_ids=[7])
    sample.gt_instances.labels = torch.tensor([0, 4])
    data = _batch(model, [_uint8((3, 96, 128), 0)],
                  [_uint8((1, 3, 64, 64), 1)], [sample], training=True)
    with pytest.raises(ValueError, match='episode_id=1'):
        model.loss(data['inputs'], data['data_samples'])


def test_forward_modes_accept_the_input_dict():
    model = _build().eval()
    data = _batch(model, [_uint8((3, 96, 128), 0)],
                  [_uint8((1, 3, 64, 64), 1)], [_sample(1)])
    with torch.no_grad():
        (cls_score, bbox_pred), = model(**data, mode='tensor')
    # One class + background; class-agnostic boxes.
    assert cls_score.shape[1] == 2 and bbox_pred.shape[1] == 4
    with pytest.raises(TypeError, match='OneShotDataPreprocessor'):
        model.predict(data['inputs']['img'], data['data_samples'])


# ------------------------------------------------------------- prediction
def test_predict_rescales_and_labels_with_episode_label():
    model = _build().eval()
    imgs = [_uint8((3, 96, 128), 0), _uint8((3, 64, 64), 1)]
    queries = [_uint8((1, 3, 64, 64), 2), _uint8((1, 3, 64, 64), 3)]
    samples = [_sample(1, (96, 128), label=5, scale=0.5),
               _sample(2, (64, 64), label=9)]
    with torch.no_grad():
        results = model(mode='predict', **_batch(model, imgs, queries, samples))
    for result, label, (h, w) in zip(results, (5, 9), ((192, 256), (64, 64))):
        pred = result.pred_instances
        assert len(pred) > 0
        assert pred.bboxes.shape == (len(pred), 4)
        assert pred.scores.shape == pred.labels.shape == (len(pred), )
        assert (pred.labels == label).all()
        # rescale=True: boxes in original image pixels.
        assert pred.bboxes[:, 2].max() <= w + 1e-3
        assert pred.bboxes[:, 3].max() <= h + 1e-3
    assert results[0].pred_instances.bboxes[:, 2].max() > 128  # rescaled


def test_predict_label_falls_back_to_zero():
    model = _build().eval()
    sample = DetDataSample(
        metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64),
                      scale_factor=(1., 1.)))
    with torch.no_grad():
        result, = model(mode='predict', **_batch(
            model, [_uint8((3, 64, 64), 0)], [_uint8((1, 3, 64, 64), 1)],
            [sample]))
    assert len(result.pred_instances) > 0
    assert (result.pred_instances.labels == 0).all()


def _assert_same_predictions(batched, singles):
    for ours, single in zip(batched, singles):
        a, b = ours.pred_instances, single.pred_instances
        assert len(a) == len(b) > 0
        torch.testing.assert_close(a.bboxes, b.bboxes, rtol=1e-4, atol=1e-3)
        torch.testing.assert_close(a.scores, b.scores, rtol=1e-4, atol=1e-5)
        assert torch.equal(a.labels, b.labels)


def test_many_queries_on_one_image_equal_one_by_one():
    model = _build().eval()
    img = _uint8((3, 96, 128), 0)
    queries = [_uint8((1, 3, 64, 64), 10 + i) for i in range(3)]
    samples = [
        _sample(42, label=i, query_ann_ids=[100 + i]) for i in range(3)
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
    # One pass for the shared image, one for the three queries.
    assert sorted(batched_calls) == [1, 3]
    _assert_same_predictions(batched, singles)
    assert not torch.equal(batched[0].pred_instances.scores,
                           batched[1].pred_instances.scores)


def test_shared_query_runs_once_but_different_images_do_not_merge():
    model = _build().eval()
    imgs = [_uint8((3, 96, 128), 0), _uint8((3, 96, 128), 1)]
    query = _uint8((1, 3, 64, 64), 2)
    # Same img_id but different pixels (e.g. a flipped copy): not shared.
    samples = [_sample(5, query_ann_ids=[9]), _sample(5, query_ann_ids=[9])]
    calls = _BackboneCalls(model)
    with torch.no_grad():
        batched = model(
            mode='predict',
            **_batch(model, imgs, [query, query.clone()], samples))
        singles = [
            model(mode='predict', **_batch(model, [i], [query], [s]))[0]
            for i, s in zip(imgs, samples)
        ]
    calls.remove()
    assert sorted(calls.sizes[:2]) == [1, 2]  # query once, both images
    _assert_same_predictions(batched, singles)


def test_k_identical_shots_equal_one_shot():
    model = _build().eval()
    img = _uint8((3, 96, 128), 0)
    query = _uint8((1, 3, 64, 64), 1)
    with torch.no_grad():
        one = model(mode='predict', **_batch(model, [img], [query], [_sample(1)]))
        three = model(mode='predict', **_batch(model, [img], [query.repeat(3, 1, 1, 1)],
                                       [_sample(1)]))
    _assert_same_predictions(three, one)


def test_query_fusion_is_validated_and_max_supported():
    with pytest.raises(ValueError, match='query_fusion'):
        _build(query_fusion='sum')
    model = _build(query_fusion='max').eval()
    query = torch.randn(2, 3, 3, 64, 64)
    with torch.no_grad():
        fused = model.extract_query_feat(query)
        per_shot = model.extract_feat(query.flatten(0, 1))
    for f, p in zip(fused, per_shot):
        torch.testing.assert_close(
            f, p.view(2, 3, *p.shape[1:]).max(dim=1).values)
    with pytest.raises(ValueError, match=r'\(B, K, 3, S, S\)'):
        model.extract_query_feat(query[:, 0])


# ------------------------------------------------ query-aware RoI head hook
@MODELS.register_module(force=True)
class _RecordingQueryRoIHeadForTest(StandardRoIHead):
    """StandardRoIHead that records the query-aware keyword arguments."""
    uses_query = True

    def loss(self, x, rpn_results_list, batch_data_samples, query_feats,
             target_feats):
        self.seen = dict(x=x, query_feats=query_feats,
                         target_feats=target_feats)
        return super().loss(x, rpn_results_list, batch_data_samples)

    def predict(self, x, rpn_results_list, batch_data_samples, rescale=False,
                query_feats=None, target_feats=None):
        self.seen = dict(x=x, query_feats=query_feats,
                         target_feats=target_feats)
        return super().predict(x, rpn_results_list, batch_data_samples,
                               rescale)


def test_query_aware_roi_head_receives_query_and_unmatched_target_feats():
    model = _build(roi_head=dict(type='_RecordingQueryRoIHeadForTest'))
    model.eval()
    img = _uint8((3, 96, 128), 0)
    queries = [_uint8((2, 3, 64, 64), 1), _uint8((2, 3, 64, 64), 2)]
    samples = [_sample(3, query_ann_ids=[1, 2]),
               _sample(3, query_ann_ids=[3, 4])]
    data = _batch(model, [img, img.clone()], queries, samples)
    with torch.no_grad():
        model(mode='predict', **data)
        target = model.extract_feat(data['inputs']['img'][:1])
        query = model.extract_query_feat(data['inputs']['query'])
    seen = model.roi_head.seen
    assert len(seen['target_feats']) == len(seen['query_feats']) == 3
    for level in range(3):
        # Target features before the matcher, one row per episode.
        assert seen['target_feats'][level].shape[0] == 2
        for row in range(2):
            torch.testing.assert_close(seen['target_feats'][level][row],
                                       target[level][0])
        torch.testing.assert_close(seen['query_feats'][level], query[level])
        assert not torch.equal(seen['x'][level], seen['target_feats'][level])
    model.train()
    model(mode='loss', **_batch(model, [img, img.clone()], queries,
                        samples, training=True))
    assert model.roi_head.seen['query_feats'][0].shape[:2] == (2, 64)


# ----------------------------------------------------------- R50 configs
def _shrink_r50(cfg_path: str):
    """Build a method config's model with test-sized proposal counts."""
    cfg = Config.fromfile(cfg_path)
    cfg.model.backbone.init_cfg = None
    shared_head = cfg.model.roi_head.get('shared_head')
    if shared_head is not None:
        shared_head.init_cfg = None
    cfg.model.train_cfg.rpn_proposal.update(nms_pre=200, max_per_img=20)
    cfg.model.train_cfg.rcnn.sampler.num = 16
    cfg.model.test_cfg.rpn.update(nms_pre=200, max_per_img=8)
    torch.manual_seed(0)
    return cfg, MODELS.build(cfg.model)


@pytest.mark.parametrize('cfg_name,matcher', [
    ('cat_r50.py', 'CrossAttentionMatcher'),
    ('siamese-faster-rcnn_r50.py', 'L1DiffMatcher'),
])
def test_r50_method_configs_build_and_run(cfg_name, matcher):
    cfg, model = _shrink_r50(osp.join(CONFIG_DIR, cfg_name))
    assert type(model.matcher).__name__ == matcher
    assert cfg.custom_imports['imports'] == ['oneshot']
    imgs = [_uint8((3, 96, 128), 0)]
    queries = [_uint8((1, 3, 64, 64), 1)]
    samples = [_sample(1, query_ann_ids=[2])]
    model.train()
    losses = model(mode='loss', **_batch(model, imgs, queries, samples, True))
    total, _ = model.parse_losses(losses)
    assert torch.isfinite(total)
    model.eval()
    with torch.no_grad():
        result, = model(mode='predict', **_batch(model, imgs, queries, samples))
    assert (result.pred_instances.labels == 3).all()
    assert result.pred_instances.bboxes.shape[1] == 4


METHOD_CONFIGS = [
    f'cat/cat_r50-c4_8xb2-12e_{data}.py' for data in (
        'coco-split1', 'coco-split2', 'coco-split3', 'coco-split4', 'voc')
] + [
    'siamese-faster-rcnn/siamese-faster-rcnn_r50-fpn_8xb2-12e_'
    f'{data}.py' for data in (
        'coco-split1', 'coco-split2', 'coco-split3', 'coco-split4', 'voc')
]


def _transform(pipeline, name):
    found = [t for t in pipeline if t['type'] == name]
    assert len(found) == 1, f'{name} in {pipeline}'
    return found[0]


@pytest.mark.parametrize('cfg_name', METHOD_CONFIGS)
def test_method_configs_load_with_their_input_sizes(cfg_name):
    cfg = Config.fromfile(osp.join(CONFIG_DIR, cfg_name))
    assert cfg.model.type == 'SiameseTwoStageDetector'
    assert cfg.model.roi_head.bbox_head.num_classes == 1
    loaders = [cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader]
    if cfg_name.startswith('cat/'):
        assert cfg.model.matcher.type == 'CrossAttentionMatcher'
        return  # C4 inputs: the dataset base's pipelines, untouched
    assert cfg.model.matcher.type == 'L1DiffMatcher'
    for loader in loaders:
        pipeline = loader.dataset.pipeline
        assert _transform(pipeline, 'Resize')['scale'] == (1024, 1024)
        assert _transform(pipeline, 'ResizeQueryPatches')['size'] == 192
        types = [t['type'] for t in pipeline]
        assert types.index('Pad') == types.index('PackOneShotInputs') - 1

"""SaFT (one-stage): the vertical fusion neck and the horizontal fusion
matcher (shapes, attention equal to nn.MultiheadAttention, gradients to
every new parameter, query-only work once per episode and target-only work
once per target image, batched == one by one), predict through
OneShotInferencer and tools/demo.py, a short training whose loss falls, and
the R50 configs."""
import copy
import json
import os.path as osp
import subprocess
import sys
from typing import List

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import DATASETS, MODELS
from mmdet.structures import DetDataSample
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.runner import Runner
from mmengine.structures import InstanceData
from quickstart_utils import REPO, data_overrides

import oneshot  # noqa: F401  (registers the oneshot modules)
from oneshot.apis import OneShotInferencer, Query
from oneshot.datasets.synthetic import generate_synthetic_dataset
from oneshot.models.dense_heads import MatchingFCOSHead
from oneshot.models.layers import ProjectedAttention
from oneshot.models.matchers import SaFTHorizontalFusion
from oneshot.models.matchers.saft_horizontal_fusion import distinct_rows
from oneshot.models.necks import SaFTVerticalFusion
from oneshot.models.necks.saft_vertical_fusion import _resize

CONFIG_DIR = osp.join(REPO, 'configs')
TINY = osp.join(CONFIG_DIR, 'quickstart/saft_r18-tiny_synthetic.py')


@pytest.fixture(scope='module', autouse=True)
def _mmdet_scope():
    register_all_modules(init_default_scope=True)


def _build(cfg_path: str = TINY, seed: int = 0, **model_overrides):
    cfg = Config.fromfile(cfg_path)
    cfg.merge_from_dict(dict(model=model_overrides))
    torch.manual_seed(seed)
    return MODELS.build(cfg.model)


def _sample(img_id: int, shape=(96, 128), label: int = 3,
            query_ann_ids=None,
            boxes=((10., 12., 50., 60.), (60., 30., 100., 80.))
            ) -> DetDataSample:
    h, w = shape
    meta = dict(img_id=img_id, img_shape=(h, w), ori_shape=(h, w),
                scale_factor=(1., 1.), episode_label=label,
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
    data = dict(inputs=dict(img=list(imgs), query=list(queries)),
                data_samples=copy.deepcopy(samples))
    return model.data_preprocessor(data, training)


def _two_episodes(model, training):
    imgs = [_uint8((3, 96, 128), 0), _uint8((3, 128, 96), 1)]
    queries = [_uint8((1, 3, 64, 64), 2), _uint8((1, 3, 64, 64), 3)]
    samples = [_sample(1, (96, 128), query_ann_ids=[7]),
               _sample(2, (128, 96), query_ann_ids=[8])]
    return _batch(model, imgs, queries, samples, training)


def _pyramid(batch, channels, sizes, seed):
    gen = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(batch, channels, *s, generator=gen)
                 for s in sizes)


TARGET_SIZES = ((12, 16), (6, 8), (3, 4))
QUERY_SIZES = ((5, 5), (3, 3), (2, 2))


# -------------------------------------------------------- attention pieces
def test_projected_attention_equals_multihead_attention():
    torch.manual_seed(0)
    attention = ProjectedAttention(16, 4).eval()
    x, y = torch.randn(2, 5, 16), torch.randn(2, 7, 16)
    expected, _ = attention.attn(x, y, y, need_weights=False)
    torch.testing.assert_close(attention(x, y, y), expected)
    with pytest.raises(ValueError, match='divisible by num_heads'):
        ProjectedAttention(10, 4)


def test_vertical_attention_is_multihead_attention_over_the_levels():
    """Each token attends to the L tokens of its own location on every
    level: the module's explicit per-location attention equals
    nn.MultiheadAttention over those L tokens, and projecting before
    resizing equals projecting the resized maps (both resizings are
    linear, weights summing to one)."""
    torch.manual_seed(0)
    vfm = SaFTVerticalFusion(16, 3, num_heads=4, feedforward_channels=32)
    vfm.eval()
    n, levels = 10, 3
    q = torch.randn(2, n, 16)
    keys = [torch.randn(2, n, 16) for _ in range(levels)]
    values = [torch.randn(2, n, 16) for _ in range(levels)]
    got = vfm._attend_levels(vfm.attention.project(q, 'q'),
                             [vfm.attention.project(k, 'k') for k in keys],
                             [vfm.attention.project(v, 'v') for v in values])
    k = torch.stack(keys, dim=2).flatten(0, 1)  # (2*n, L, C)
    v = torch.stack(values, dim=2).flatten(0, 1)
    expected, _ = vfm.attention.attn(q.flatten(0, 1).unsqueeze(1), k, v,
                                     need_weights=False)
    torch.testing.assert_close(got, expected.view(2, n, 16))

    feat = torch.randn(1, 16, 12, 16)
    weight, bias = torch.randn(8, 16), torch.randn(8)

    def project(x):
        return F.conv2d(x, weight[..., None, None], bias)

    for size in ((6, 8), (5, 7), (24, 32), (12, 16)):
        torch.testing.assert_close(
            _resize(project(feat), size), project(_resize(feat, size)),
            rtol=1e-4, atol=1e-4)


def test_distinct_rows_groups_identical_targets():
    a, b = torch.randn(1, 4, 3, 3), torch.randn(1, 4, 3, 3)
    assert distinct_rows([a]) == (None, None)
    assert distinct_rows([torch.cat([a, b])]) == (None, None)
    keep, inverse = distinct_rows([torch.cat([a, b, a, b, a])])
    assert keep == [0, 1] and inverse.tolist() == [0, 1, 0, 1, 0]
    # A cached target expanded to 3 episodes (OneShotInferencer).
    keep, inverse = distinct_rows([a.expand(3, -1, -1, -1)])
    assert keep == [0] and inverse.tolist() == [0, 0, 0]
    # Rows must match on every level.
    level2 = torch.randn(2, 4, 2, 2)
    assert distinct_rows([torch.cat([a, a]), level2]) == (None, None)


# ------------------------------------------------------------------ shapes
def test_vertical_fusion_keeps_the_pyramid_shapes_and_mixes_levels():
    torch.manual_seed(0)
    vfm = SaFTVerticalFusion(16, 3, num_heads=4,
                             feedforward_channels=32).eval()
    feats = _pyramid(2, 16, TARGET_SIZES, 0)
    out = vfm(feats)
    assert [o.shape for o in out] == [f.shape for f in feats]
    # Cross-scale: changing the coarsest level changes the finest output.
    changed = feats[:2] + (feats[2] + 1.0, )
    assert not torch.allclose(vfm(changed)[0], out[0])
    with pytest.raises(ValueError, match='num_levels=3.*2 levels'):
        vfm(feats[:2])
    with pytest.raises(ValueError, match="in_channels = the FPN's"):
        vfm(_pyramid(2, 8, TARGET_SIZES, 0))
    with pytest.raises(ValueError, match='at least 2'):
        SaFTVerticalFusion(16, 1)


def test_horizontal_fusion_shapes_and_dependence_on_the_query():
    torch.manual_seed(0)
    hfm = SaFTHorizontalFusion(16, 3, out_channels=8, num_heads=4,
                               feedforward_channels=32).eval()
    target = _pyramid(2, 16, TARGET_SIZES, 0)
    query = _pyramid(2, 16, QUERY_SIZES, 1)
    out = hfm(target, query)
    assert [o.shape for o in out] == [(2, 8, *s) for s in TARGET_SIZES]
    assert all((o >= 0).all() for o in out)  # ReLU output
    # Each episode reads its own query: swapping queries swaps the rows
    # that depend on them.
    swapped = hfm(target, tuple(q.flip(0) for q in query))
    assert not torch.allclose(swapped[0][0], out[0][0])
    # Changing the coarsest query level changes the finest target level
    # (every query point attends to the whole target pyramid and back).
    other = hfm(target, query[:2] + (query[2] + 1.0, ))
    assert not torch.allclose(other[0], out[0])
    with pytest.raises(ValueError, match='num_levels=2 but received 3'):
        SaFTHorizontalFusion(16, 2, num_heads=4)(target, query)
    with pytest.raises(ValueError, match='divisible by num_heads'):
        SaFTHorizontalFusion(10, 3, num_heads=4)


def test_detector_forward_shapes():
    model = _build().eval()
    assert type(model).__name__ == 'SiameseSingleStageDetector'
    assert isinstance(model.neck[1], SaFTVerticalFusion)
    assert isinstance(model.matcher, SaFTHorizontalFusion)
    assert isinstance(model.bbox_head, MatchingFCOSHead)
    data = _two_episodes(model, False)
    with torch.no_grad():
        cls_scores, bbox_preds, centernesses = model(**data, mode='tensor')
    img_h, img_w = data['inputs']['img'].shape[-2:]
    assert len(cls_scores) == len(bbox_preds) == len(centernesses) == 3
    for level, stride in enumerate((8, 16, 32)):
        size = (-(-img_h // stride), -(-img_w // stride))
        assert cls_scores[level].shape == (2, 1, *size)  # class-agnostic
        assert bbox_preds[level].shape == (2, 4, *size)
        assert centernesses[level].shape == (2, 1, *size)


def test_predict_labels_with_episode_label():
    model = _build().eval()
    imgs = [_uint8((3, 96, 128), 0), _uint8((3, 64, 64), 1)]
    queries = [_uint8((1, 3, 64, 64), 2), _uint8((1, 3, 64, 64), 3)]
    samples = [_sample(1, (96, 128), label=5), _sample(2, (64, 64), label=9)]
    with torch.no_grad():
        results = model(mode='predict',
                        **_batch(model, imgs, queries, samples))
    for result, label in zip(results, (5, 9)):
        assert len(result.pred_instances) > 0
        assert (result.pred_instances.labels == label).all()


# --------------------------------------------------------------- gradients
def test_gradients_reach_every_new_parameter():
    model = _build().train()
    data = _two_episodes(model, True)
    query = data['inputs']['query'].requires_grad_()
    losses = model.loss(dict(img=data['inputs']['img'], query=query),
                        data['data_samples'])
    assert set(losses) == {'loss_cls', 'loss_bbox', 'loss_centerness'}
    total, _ = model.parse_losses(losses)
    assert torch.isfinite(total)
    total.backward()
    assert query.grad.abs().sum() > 0
    new = list(model.neck[1].named_parameters(prefix='neck.1')) + \
        list(model.matcher.named_parameters(prefix='matcher'))
    assert len(new) > 40
    without = [n for n, p in new if p.grad is None or not p.grad.abs().sum()]
    assert not without, without
    for name, part in (('backbone', model.backbone), ('fpn', model.neck[0]),
                       ('bbox_head', model.bbox_head)):
        assert any(p.grad is not None and p.grad.abs().sum() > 0
                   for p in part.parameters()), name


# ------------------------------------- work sharing, batched == one by one
def _count_rows(module, method: str, rows: List[int]):
    """Record the batch size of every call of ``module.method``."""
    original = getattr(module, method)

    def wrapper(feats, *args, **kwargs):
        rows.append(feats[0].shape[0])
        return original(feats, *args, **kwargs)

    setattr(module, method, wrapper)


def test_query_work_once_per_episode_target_work_once_per_image():
    model = _build().eval()
    img = _uint8((3, 96, 128), 0)
    queries = [_uint8((2, 3, 64, 64), 10 + i) for i in range(3)]  # 2-shot
    samples = [_sample(42, label=i, query_ann_ids=[100 + i, 200 + i])
               for i in range(3)]
    vfm_rows, target_rows, query_rows, backbone_rows = [], [], [], []
    model.neck[1].register_forward_hook(
        lambda module, args, out: vfm_rows.append(args[0][0].shape[0]))
    model.backbone.register_forward_hook(
        lambda module, args, out: backbone_rows.append(args[0].shape[0]))
    _count_rows(model.matcher, 'encode_target', target_rows)
    _count_rows(model.matcher, 'encode_query', query_rows)
    with torch.no_grad():
        model(mode='predict', **_batch(
            model, [img.clone() for _ in range(3)], queries, samples))
    # The vertical fusion (in the neck) runs once for the shared target
    # image and once for the 3 x 2 query patches, like the backbone.
    assert sorted(backbone_rows) == sorted(vfm_rows) == [1, 6]
    # The horizontal fusion's target-only work runs once for the image,
    # its query-only work once per episode (K shots already fused).
    assert target_rows == [1] and query_rows == [3]
    # Three different images: the target work runs for each.
    target_rows.clear(), query_rows.clear()
    with torch.no_grad():
        model(mode='predict', **_batch(
            model, [_uint8((3, 96, 128), i) for i in range(3)], queries,
            [_sample(i, label=i, query_ann_ids=[100 + i, 200 + i])
             for i in range(3)]))
    assert target_rows == [3] and query_rows == [3]


def test_many_queries_on_one_image_equal_one_by_one():
    model = _build().eval()
    img = _uint8((3, 96, 128), 0)
    queries = [_uint8((2, 3, 64, 64), 10 + i) for i in range(3)]
    samples = [_sample(42, label=i, query_ann_ids=[100 + i, 200 + i])
               for i in range(3)]
    with torch.no_grad():
        batched = model(mode='predict', **_batch(
            model, [img.clone() for _ in range(3)], queries, samples))
        singles = [model(mode='predict', **_batch(model, [img], [q], [s]))[0]
                   for q, s in zip(queries, samples)]
    for ours, single in zip(batched, singles):
        a, b = ours.pred_instances, single.pred_instances
        assert len(a) == len(b) > 0
        torch.testing.assert_close(a.bboxes, b.bboxes, rtol=1e-4, atol=1e-3)
        torch.testing.assert_close(a.scores, b.scores, rtol=1e-4, atol=1e-5)
        assert torch.equal(a.labels, b.labels)
    assert not torch.equal(batched[0].pred_instances.scores,
                           batched[1].pred_instances.scores)


# ------------------------------------------- inferencer and tools/demo.py
@pytest.fixture(scope='module')
def tiny_setup(tmp_path_factory):
    """Synthetic data, the tiny SaFT config pointing at it and a
    random-weight checkpoint."""
    tmp = tmp_path_factory.mktemp('saft')
    root = str(tmp / 'data')
    generate_synthetic_dataset(root, num_train=2, num_val=3, seed=3)
    cfg = Config.fromfile(TINY)
    cfg.merge_from_dict(data_overrides(root))
    # FCOS's initial classifier prior (0.01) puts every random-weight score
    # under the default threshold of 0.05.
    cfg.model.test_cfg.score_thr = 0.0
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    ckpt = str(tmp / 'model.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), ckpt)
    return root, cfg, ckpt


def test_inferencer_equals_detector_predict(tiny_setup):
    root, cfg, ckpt = tiny_setup
    inferencer = OneShotInferencer(cfg, ckpt, device='cpu', batch_size=2)
    model = inferencer.model
    target_rows = []
    _count_rows(model.matcher, 'encode_target', target_rows)
    ds_cfg = cfg.test_dataloader.dataset.copy()
    ds_cfg.episode_classes = 'all'
    dataset = DATASETS.build(ds_cfg)
    dataset.set_run(0)
    by_img = {}
    for idx in range(len(dataset)):
        by_img.setdefault(dataset.get_data_info(idx)['img_path'],
                          []).append(idx)
    img_path, indices = max(by_img.items(), key=lambda kv: len(kv[1]))
    assert len(indices) >= 2
    episodes = [dataset[i] for i in indices]
    with torch.no_grad():
        expected = model.test_step(pseudo_collate(episodes))
    queries = []
    for idx in indices:
        (q, ) = dataset.get_data_info(idx)['query_infos']
        queries.append(Query(q['img_path'], q['bbox']))
    target_rows.clear()
    (result, ) = inferencer(img_path, queries)
    # The cached target reaches the matcher expanded: one row of target
    # work per chunk of batch_size queries.
    assert target_rows == [1] * -(-len(indices) // 2)
    assert len(result['detections']) == len(indices)
    for exp, got in zip(expected, result['detections']):
        inst = exp.pred_instances
        order = torch.argsort(inst.scores, descending=True, stable=True)
        assert len(got['scores']) == len(order) > 0
        np.testing.assert_allclose(got['scores'], inst.scores[order].numpy(),
                                   rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(got['bboxes'], inst.bboxes[order].numpy(),
                                   rtol=1e-4, atol=1e-3)


def test_demo_runs_with_saft(tiny_setup, tmp_path):
    root, cfg, ckpt = tiny_setup
    cfg_path = str(tmp_path / 'cfg.py')
    cfg.dump(cfg_path)
    val = osp.join(root, 'val')
    out = tmp_path / 'demo'
    cmd = [sys.executable, osp.join(REPO, 'tools/demo.py'),
           osp.join(val, '000000.png'), '--query',
           osp.join(val, '000001.png'), '--query-box', '20,20,90,100',
           '--config', cfg_path, '--checkpoint', ckpt, '--out', str(out),
           '--device', 'cpu', '--score-thr', '0.0']
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in out.glob('*.png')) == ['000000.png']
    summary = json.loads((out / 'detections.json').read_text())
    (record, ) = summary['results']
    (det, ) = record['detections']
    assert len(det['bboxes']) == len(det['scores']) > 0


# ---------------------------------------------------------------- training
def test_tiny_saft_training_lowers_the_loss(tmp_path):
    root = str(tmp_path / 'data')
    generate_synthetic_dataset(
        root, num_train=8, num_val=1, seed=0,
        classes=['square-solid', 'square-outline', 'circle-solid',
                 'circle-outline'])
    cfg = Config.fromfile(TINY)
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


# ------------------------------------------------------------- R50 configs
SAFT_CONFIGS = [
    f'saft/saft_r50-fpn_8xb2-12e_{data}.py' for data in (
        'coco-split1', 'coco-split2', 'coco-split3', 'coco-split4', 'voc')
]
QUICKSTART_CONFIGS = [
    f'quickstart/saft_r18-tiny_{name}.py'
    for name in ('synthetic', 'glyphs', 'glyphs-pretrained')
]


@pytest.mark.parametrize('cfg_name', SAFT_CONFIGS)
def test_saft_configs_load_with_their_settings(cfg_name):
    cfg = Config.fromfile(osp.join(CONFIG_DIR, cfg_name))
    model = cfg.model
    assert model.type == 'SiameseSingleStageDetector'
    fpn, vfm = model.neck
    assert fpn.type == 'FPN' and fpn.num_outs == 5  # P3-P7
    assert vfm.type == 'SaFTVerticalFusion'
    assert vfm.in_channels == fpn.out_channels == 256
    assert vfm.num_levels == model.matcher.num_levels == 5
    assert model.matcher.type == 'SaFTHorizontalFusion'
    assert model.matcher.out_channels == model.bbox_head.in_channels == 256
    assert model.bbox_head.type == 'MatchingFCOSHead'
    assert model.bbox_head.strides == [8, 16, 32, 64, 128]
    split = 'voc' if cfg_name.endswith('voc.py') else \
        'coco_split' + cfg_name[-4]
    for loader in (cfg.train_dataloader, cfg.test_dataloader):
        assert loader.dataset.split == split
        sizes = [t['size'] for t in loader.dataset.pipeline
                 if t['type'] == 'ResizeQueryPatches']
        assert sizes == [200]
    assert cfg.optim_wrapper.optimizer.lr == 0.01
    assert cfg.train_cfg.max_epochs == 12


def test_entry_config_is_split1():
    entry = Config.fromfile(osp.join(CONFIG_DIR, 'saft_r50.py'))
    split1 = Config.fromfile(osp.join(CONFIG_DIR, SAFT_CONFIGS[0]))
    assert entry.to_dict() == split1.to_dict()


@pytest.mark.parametrize('cfg_name', QUICKSTART_CONFIGS)
def test_quickstart_configs_differ_from_matching_fcos_only_in_fusion(
        cfg_name):
    cfg = Config.fromfile(osp.join(CONFIG_DIR, cfg_name))
    ref = Config.fromfile(osp.join(
        CONFIG_DIR, cfg_name.replace('saft_', 'matching-fcos_')))
    ours, theirs = cfg.to_dict(), ref.to_dict()
    # Only the config variable num_levels is new at the top level.
    assert set(ours) - set(theirs) == {'num_levels'}
    for key in set(ours) | set(theirs):
        if key not in ('model', 'filename', 'num_levels'):
            assert ours.get(key) == theirs.get(key), key
    for key in set(ours['model']) | set(theirs['model']):
        if key not in ('neck', 'matcher'):
            assert ours['model'].get(key) == theirs['model'].get(key), key
    assert ours['model']['neck'][0] == theirs['model']['neck']
    vfm, hfm = ours['model']['neck'][1], ours['model']['matcher']
    assert vfm['in_channels'] == hfm['in_channels'] == 64
    assert vfm['num_levels'] == hfm['num_levels'] == 3
    assert vfm['num_heads'] == hfm['num_heads'] == 4


def test_saft_r50_builds_and_runs():
    cfg = Config.fromfile(osp.join(CONFIG_DIR, 'saft_r50.py'))
    cfg.model.backbone.init_cfg = None
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

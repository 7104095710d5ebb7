"""The inferencer's public pieces (oneshot.apis: images, queries, pipeline,
batching) and its batches: several queries per forward give what one query
per forward gives, also for heads that pool the target's own maps (BHRL,
SARM), whose RoIAlign reads its input's memory directly."""
import copy
import os.path as osp

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope
from quickstart_utils import REPO, data_overrides

from oneshot.apis import (OneShotInferencer, Query, build_inference_pipeline,
                          make_query_sets, pair_batches, read_image,
                          resolve_targets, stack_patches)
from oneshot.datasets.synthetic import generate_synthetic_dataset


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('batching') / 'data')
    generate_synthetic_dataset(root, num_train=2, num_val=3, seed=4)
    return root


def _inferencer(name, root, tmp, batch_size):
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'quickstart', name))
    cfg.merge_from_dict(data_overrides(root))
    ckpt = osp.join(tmp, name + '.pth')
    if not osp.exists(ckpt):
        init_default_scope('mmdet')
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
        model.init_weights()
        torch.save(dict(state_dict=model.state_dict(), meta=dict()), ckpt)
    return OneShotInferencer(cfg, ckpt, device='cpu', batch_size=batch_size)


@pytest.mark.parametrize('name', ['bhrl_r18-tiny_synthetic.py',
                                  'matching-fcos-sarm_r18-tiny_synthetic.py'])
def test_batched_queries_equal_one_query_per_forward(data, tmp_path, name):
    val = osp.join(data, 'val')
    queries = [Query(osp.join(val, '000000.png'), [10, 10, 70, 70]),
               Query(osp.join(val, '000001.png')),
               Query(osp.join(val, '000002.png'), [20, 30, 120, 110])]
    one = _inferencer(name, data, str(tmp_path), 1)(val, queries)
    three = _inferencer(name, data, str(tmp_path), 3)(val, queries)
    compared = 0
    for a, b in zip(one, three):
        for da, db in zip(a['detections'], b['detections']):
            assert da['scores'].shape == db['scores'].shape
            np.testing.assert_allclose(db['scores'], da['scores'],
                                       rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(db['bboxes'], da['bboxes'],
                                       atol=1e-3)
            compared += len(da['scores'])
    assert compared > 0


def test_pair_batches_are_contiguous_rows():
    target = (torch.randn(1, 2, 4, 4), torch.randn(1, 2, 2, 2))
    queries = [(torch.full((1, 2, 3, 3), float(i)),
                torch.full((1, 2, 1, 1), float(i))) for i in range(5)]
    batches = list(pair_batches(target, queries, 2))
    assert [start for start, _, _ in batches] == [0, 2, 4]
    for start, t_feats, q_feats in batches:
        n = q_feats[0].shape[0]
        for level, feat in enumerate(t_feats):
            assert feat.is_contiguous() and feat.shape[0] == n
            assert torch.equal(feat, target[level].expand_as(feat))
        assert q_feats[0][:, 0, 0, 0].tolist() == list(
            range(start, start + n))


def test_public_pieces_reproduce_the_inferencer_inputs(data):
    cfg = Config.fromfile(osp.join(
        REPO, 'configs/quickstart/siamese-faster-rcnn_r18-tiny_synthetic.py'))
    init_default_scope('mmdet')
    pipeline = build_inference_pipeline(cfg, 'quickstart')
    val = osp.join(data, 'val')
    assert resolve_targets(val) == [osp.join(val, f'00000{i}.png')
                                    for i in range(3)]
    img = read_image(osp.join(val, '000000.png'), 'Target')
    packed = pipeline.prepare_target(img, 'x.png', 0)
    assert packed['inputs'].dtype == torch.uint8
    assert packed['data_samples'].img_path == 'x.png'
    sets = make_query_sets(
        [Query(osp.join(val, '000001.png'), [5, 5, 60, 50]),
         [Query(img), Query(img, [0, 0, 30, 30])]], pipeline.crop_query)
    assert [qs.name for qs in sets] == ['000001', 'query1']
    query = stack_patches(sets[1].patches)
    size = next(s['size'] for s in cfg.test_dataloader.dataset.pipeline
                if s['type'] == 'ResizeQueryPatches')
    assert query.shape == (2, 3, size, size) and query.dtype == torch.uint8
    with pytest.raises(KeyError, match='ResizeQueryPatches'):
        bad = copy.deepcopy(cfg)
        bad.test_dataloader.dataset.pipeline = [
            s for s in cfg.test_dataloader.dataset.pipeline
            if s['type'] != 'ResizeQueryPatches']
        build_inference_pipeline(bad, 'bad.py')

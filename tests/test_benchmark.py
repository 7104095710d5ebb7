"""tools/benchmark.py: the random batch and the per-stage timers measure
the model without changing what it predicts."""
import importlib.util
import os.path as osp
from collections import defaultdict

import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope
from quickstart_utils import REPO

import oneshot  # noqa: F401

spec = importlib.util.spec_from_file_location(
    'oneshot_benchmark', osp.join(REPO, 'tools/benchmark.py'))
benchmark = importlib.util.module_from_spec(spec)
spec.loader.exec_module(benchmark)


def _model_and_batch(name, queries=2, shots=2):
    cfg = Config.fromfile(osp.join(REPO, 'configs/quickstart', name))
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    return model, benchmark.make_batch(cfg, 96, 64, queries, shots), cfg


def test_batch_holds_one_target_and_k_shots_per_episode():
    _, data, cfg = _model_and_batch(
        'siamese-faster-rcnn_r18-tiny_synthetic.py', queries=3, shots=2)
    size = cfg.query_size  # the quickstart's ResizeQueryPatches size
    assert len(data['inputs']['img']) == 3
    assert all(q.shape == (2, 3, size, size) for q in data['inputs']['query'])
    assert all(img is data['inputs']['img'][0]
               for img in data['inputs']['img'])
    assert [s.query_ann_ids for s in data['data_samples']] == \
        [[0, 1], [2, 3], [4, 5]]


def test_stage_timers_count_every_stage_and_change_nothing():
    for name, expected in [
            ('siamese-faster-rcnn_r18-tiny_synthetic.py',
             ['backbone', 'neck', 'matcher', 'rpn_head', 'roi_head']),
            ('matching-fcos_r18-tiny_synthetic.py',
             ['backbone', 'neck', 'matcher', 'bbox_head'])]:
        model, data, _ = _model_and_batch(name)
        with torch.no_grad():
            plain = model.test_step(data)
            totals = defaultdict(float)
            found = benchmark.add_stage_timers(model, 'cpu', totals)
            assert found == expected
            timed = model.test_step(data)
        assert set(totals) == set(expected), name
        assert all(t > 0 for t in totals.values()), totals
        for a, b in zip(plain, timed):
            torch.testing.assert_close(a.pred_instances.bboxes,
                                       b.pred_instances.bboxes)
            torch.testing.assert_close(a.pred_instances.scores,
                                       b.pred_instances.scores)

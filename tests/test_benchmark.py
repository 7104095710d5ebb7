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


# ------------------------------------------------- base detectors, ratios
import glob  # noqa: E402
import io  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
from contextlib import redirect_stdout  # noqa: E402

import pytest  # noqa: E402

METHOD_CONFIGS = sorted(
    p for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'),
                         recursive=True)
    if '_base_' not in p)


def _strip_init(cfg):
    cfg = cfg.to_dict() if hasattr(cfg, 'to_dict') else dict(cfg)
    cfg.pop('init_cfg', None)
    return cfg


def test_every_method_config_has_a_base_detector_of_its_sizes():
    kinds = {}
    for path in METHOD_CONFIGS:
        cfg = Config.fromfile(path)
        if not benchmark.is_oneshot(cfg):
            continue
        name, base = benchmark.base_model_cfg(cfg, path)
        kinds[benchmark.base_kind(cfg)] = name
        method = cfg.model
        assert name == benchmark.BASE_DETECTORS[benchmark.base_kind(cfg)]
        assert base.type == ('FCOS' if method.type ==
                             'SiameseSingleStageDetector' else 'FasterRCNN')
        assert base.data_preprocessor.type == 'DetDataPreprocessor'
        assert base.data_preprocessor.mean == method.data_preprocessor.mean
        assert _strip_init(base.backbone) == _strip_init(method.backbone)
        neck = method.get('neck')
        if isinstance(neck, list):  # SaFT: FPN + its vertical fusion
            assert base.neck == neck[0] and neck[0].type == 'FPN', path
        else:
            assert base.get('neck') == neck, path
        assert base.test_cfg == method.test_cfg
        assert 'matcher' not in base
        if base.type == 'FCOS':
            assert base.bbox_head.type == 'FCOSHead'
            assert base.bbox_head.num_classes == 80
            assert base.bbox_head.stacked_convs == \
                method.bbox_head.stacked_convs
            continue
        width = method.matcher.in_channels
        extractor = base.roi_head.bbox_roi_extractor
        assert extractor.roi_layer == \
            method.roi_head.bbox_roi_extractor.roi_layer
        assert extractor.featmap_strides == \
            method.roi_head.bbox_roi_extractor.featmap_strides
        assert extractor.out_channels == width
        assert base.roi_head.type == 'StandardRoIHead'
        assert base.roi_head.bbox_head.num_classes == 80
        if method.rpn_head.type == 'RPNHead':
            assert base.rpn_head.anchor_generator == \
                method.rpn_head.anchor_generator
            assert base.rpn_head.in_channels == width
        if method.roi_head.get('shared_head'):
            assert _strip_init(base.roi_head.shared_head) == \
                _strip_init(method.roi_head.shared_head)
            assert base.roi_head.bbox_head.with_avg_pool
    # The repository's configs use every entry of the table.
    assert set(kinds) == set(benchmark.BASE_DETECTORS), kinds


@pytest.mark.parametrize('name', [
    'siamese-faster-rcnn_r18-tiny_synthetic.py',
    'coae_r18-tiny_synthetic.py',
    'matching-fcos_r18-tiny_synthetic.py',
    'matching-fcos-sarm_r18-tiny_synthetic.py'])
def test_base_detector_builds_and_predicts(name):
    cfg = Config.fromfile(osp.join(REPO, 'configs/quickstart', name))
    init_default_scope('mmdet')
    _, base_cfg = benchmark.base_model_cfg(cfg)
    model = benchmark.build_model(base_cfg, 'cpu').eval()
    data = benchmark.make_batch(Config(dict(model=base_cfg)), 96, 64, 1, 1)
    with torch.no_grad():
        (out, ) = model.test_step(data)
    assert out.pred_instances.bboxes.shape[1] == 4
    # Same backbone widths as the method: equal parameter counts there.
    method = MODELS.build(cfg.model)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(model.backbone) == count(method.backbone)


def test_base_of_an_unknown_detector_is_a_clear_error():
    cfg = Config.fromfile(osp.join(
        REPO, 'configs/quickstart/siamese-faster-rcnn_r18-tiny_synthetic.py'))
    cfg.model.rpn_head.type = 'GARPNHead'
    with pytest.raises(ValueError, match='my.py: no base detector.*'
                       'BASE_DETECTORS'):
        benchmark.base_kind(cfg, 'my.py')


def test_median_and_paired_ratio():
    assert benchmark.median([3.0, 1.0, 2.0]) == 2.0
    assert benchmark.median([4.0, 1.0, 2.0, 3.0]) == 2.5
    # Per-round ratios 2, 1, 4 -> median 2 (not the ratio of the medians,
    # 4 / 2 = 2 by coincidence here, so check an uneven case too).
    assert benchmark.paired_ratio([2.0, 3.0, 8.0], [1.0, 3.0, 2.0]) == 2.0
    assert benchmark.paired_ratio([10.0, 9.0], [1.0, 2.0]) == \
        pytest.approx((10.0 + 4.5) / 2)
    # K queries against K single runs.
    assert benchmark.paired_ratio([6.0], [2.0], scale=4) == 0.75
    with pytest.raises(ValueError, match='one denominator per numerator'):
        benchmark.paired_ratio([1.0, 2.0], [1.0])
    with pytest.raises(ValueError):
        benchmark.median([])
    assert benchmark.median_index([5.0, 1.0, 3.0, 9.0]) == 2


def _fake_run(label, model, queries, times, base_of=None):
    run = benchmark.Run(label, model, {}, queries, queries, lambda: None,
                        base_of=base_of, base_name='mmdet::x.py')
    run.times = times
    return run


def test_runs_pair_with_their_single_query_run_and_base():
    m1, m2, b = object(), object(), object()
    runs = [_fake_run('a.py [K=1]', m1, 1, [1.0]),
            _fake_run('a.py [K=4]', m1, 4, [2.0]),
            _fake_run('c.py [K=1]', m2, 1, [1.0]),
            _fake_run('c.py [K=4]', m2, 4, [3.0]),
            _fake_run('  base: x.py', b, 1, [0.5], base_of=['a.py', 'c.py'])]
    assert [(r.label, s.label) for r, s in benchmark.k_scaling(runs)] == \
        [('a.py [K=4]', 'a.py [K=1]'), ('c.py [K=4]', 'c.py [K=1]')]
    assert [(m.label, b.label) for m, b in benchmark.base_pairs(runs)] == \
        [('a.py [K=1]', '  base: x.py'), ('c.py [K=1]', '  base: x.py')]


def test_peak_memory_sees_a_large_allocation():
    memory = benchmark.PeakMemory('cpu')
    memory.start()
    big = torch.ones(64 * 1024 * 1024 // 4 * 3)  # 192 MiB, touched
    del big
    peak = memory.stop()
    assert 180 * 2**20 < peak < 400 * 2**20, peak / 2**20
    memory.start()
    small = torch.ones(1024)
    del small
    assert memory.stop() < 32 * 2**20


def test_op_recorder_names_mmcv_cpu_ops_and_restores_them():
    from mmcv import _ext
    original = _ext.nms
    model, data, _ = _model_and_batch(
        'siamese-faster-rcnn_r18-tiny_synthetic.py', queries=1, shots=1)
    with torch.no_grad(), benchmark.OpRecorder() as ops:
        model.test_step(data)
    assert _ext.nms is original
    assert set(ops.calls) == {'RoIAlign', 'nms'}
    assert set(ops.calls['RoIAlign']) == {'mmcv._ext (cpu)'}
    assert 'nms: mmcv._ext (cpu) x' in ops.summary()


def test_k_query_batch_of_the_benchmark_equals_single_query_runs():
    """The K-query run computes what K one-query runs compute, so the
    scaling ratio compares the same work."""
    model, data, cfg = _model_and_batch(
        'siamese-faster-rcnn_r18-tiny_synthetic.py', queries=3, shots=1)
    with torch.no_grad():
        batched = model.test_step(data)
        for i, sample in enumerate(batched):
            single = dict(
                inputs=dict(img=data['inputs']['img'][i:i + 1],
                            query=data['inputs']['query'][i:i + 1]),
                data_samples=[data['data_samples'][i]])
            (one, ) = model.test_step(single)
            a, b = sample.pred_instances, one.pred_instances
            assert len(a) == len(b) > 0
            torch.testing.assert_close(a.bboxes, b.bboxes, rtol=1e-4,
                                       atol=1e-3)
            torch.testing.assert_close(a.scores, b.scores, rtol=1e-4,
                                       atol=1e-5)
    assert not torch.equal(batched[0].pred_instances.scores,
                           batched[1].pred_instances.scores)


def test_main_prints_ratios_scaling_memory_and_ops():
    cfg = osp.join(REPO,
                   'configs/quickstart/siamese-faster-rcnn_r18-tiny_synthetic.py')
    out = io.StringIO()
    with redirect_stdout(out):
        benchmark.main([cfg, '--base', '--queries', '1', '2', '--size', '96',
                        '64', '--repeat', '2', '--warmup', '0', '--stages',
                        '--clock', 'cpu'])
    text = out.getvalue()
    assert 'cpu clock, median of 2 interleaved rounds' in text
    assert 'siamese-faster-rcnn_r18-tiny_synthetic.py [K=2]' in text
    assert '  base: faster-rcnn_r50_fpn_1x_coco.py' in text
    ratio = [line for line in text.splitlines()
             if line.startswith('siamese-faster-rcnn_r18-tiny_synthetic.py')
             and 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py' in line]
    assert len(ratio) == 1 and float(ratio[0].split()[-1]) > 0
    assert 'ratio to K x 1' in text
    assert 'RoIAlign: mmcv._ext (cpu)' in text


def test_main_train_mode_reports_episodes_per_second():
    cfg = osp.join(REPO, 'configs/quickstart/matching-fcos_r18-tiny_synthetic.py')
    out = io.StringIO()
    with redirect_stdout(out):
        benchmark.main([cfg, '--base', '--train', '--batch-size', '2',
                        '--size', '96', '96', '--repeat', '1', '--warmup',
                        '0'])
    text = out.getvalue()
    assert 'train_step (forward, loss, backward, SGD step)' in text
    # The first table: config, s/iter, episodes/s, episodes, memory, weights.
    table = text.split('\nconfig')[1].split('\n\n')[0].splitlines()[1:]
    assert [r.split()[0] for r in table] == [
        'matching-fcos_r18-tiny_synthetic.py', 'base:']
    for row in table:
        s_iter, rate, episodes = map(float, row.split()[-5:-2])
        # s/iter is printed to 3 decimals, so it is known only to +-0.0005:
        # the rate must lie between 2 / (s_iter + 0.0005) and
        # 2 / (s_iter - 0.0005) (plus the rounding of the rate itself).
        assert episodes == 2
        assert 2 / (s_iter + 0.0005) - 0.0005 <= rate
        assert rate <= 2 / (s_iter - 0.0005) + 0.0005
    assert 'ratio = method / base' in text


def test_bad_arguments_are_refused():
    cfg = osp.join(REPO,
                   'configs/quickstart/siamese-faster-rcnn_r18-tiny_synthetic.py')
    for argv, msg in [([cfg, '--base', '--queries', '4'], 'include 1'),
                      ([cfg, '--queries', '0'], 'must be >= 1'),
                      ([cfg, '--device', 'cuda', '--clock', 'cpu'], 'cuda')]:
        err = io.StringIO()
        with pytest.raises(SystemExit), \
                __import__('contextlib').redirect_stderr(err):
            benchmark.parse_args(argv)
        assert msg in err.getvalue().lower(), (argv, err.getvalue())


def test_gpu_check_stops_clearly_without_cuda(tmp_path):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='',
               WORK_DIR=str(tmp_path / 'gpu'))
    proc = subprocess.run(['bash', osp.join(REPO, 'tools/gpu_check.sh')],
                          env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert 'no CUDA' in proc.stderr and 'Nothing was run' in proc.stderr
    assert not (tmp_path / 'gpu').exists()

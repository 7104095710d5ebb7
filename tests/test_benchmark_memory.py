"""tools/analysis/benchmark_memory.py: its /proc parsing, the measuring
points, the (target, query) pairs it builds and the per-draw hook (the
benchmark itself is run by hand; its figures are in the README)."""
import importlib.util
import json
import os.path as osp
import sys

import numpy as np
import pytest
from quickstart_utils import REPO

spec = importlib.util.spec_from_file_location(
    'benchmark_memory', osp.join(REPO, 'tools/analysis/benchmark_memory.py'))
bm = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bm)

STATUS = """Name:\tpython
State:\tS (sleeping)
PPid:\t4321
VmPeak:\t 2000000 kB
VmHWM:\t  409600 kB
VmRSS:\t  204800 kB
Threads:\t3
"""


def test_parse_status():
    status = bm.parse_status(STATUS)
    assert status == dict(PPid=4321, VmPeak=2000000 / 1024, VmHWM=400.0,
                          VmRSS=200.0)


def test_checkpoints():
    assert bm.checkpoints(1000, 250, 50) == [50, 250, 500, 750, 1000]
    assert bm.checkpoints(1000, 300, 0) == [0, 300, 600, 900, 1000]
    assert bm.checkpoints(10, 5, 5) == [5, 10]
    for bad in ((10, 5, 10), (10, 0, 2), (10, 5, -1)):
        with pytest.raises(ValueError, match='warmup'):
            bm.checkpoints(*bad)


def test_growth():
    assert bm.growth([700.0, 702.5, 701.0]) == 1.0
    assert bm.growth([5.0]) == 0.0
    # Peaks: noise below an earlier high is no growth, a new high is.
    assert bm.new_high([990.0, 940.0, 1050.0, 920.0, 995.0]) == -55.0
    assert bm.new_high([900.0, 910.0, 920.0, 930.0]) == 10.0


@pytest.mark.skipif(not sys.platform.startswith('linux'),
                    reason='/proc is Linux')
def test_rss_and_peak_follow_an_allocation():
    before = bm.rss_mb()
    block = np.ones(64 * 1024 * 1024 // 8)  # 64 MiB, touched
    assert bm.rss_mb() - before > 50
    del block
    # Late in a long pytest process glibc may have served the block from
    # its heap rather than a fresh mapping; give freed memory back first,
    # as the tool does before it reads the resident size.
    bm.release_freed()
    high = bm.peak_mb()
    assert high - bm.rss_mb() > 50
    # Reset: the peak is the current size again, not the old high.
    if bm.reset_peak():
        assert bm.peak_mb() < high - 50
    assert bm.children_rss() == []  # no workers here


def test_inferencer_pairs_take_the_query_from_another_image(tmp_path):
    coco = dict(
        images=[dict(id=i, file_name=f'{i}.png', width=20, height=20)
                for i in (1, 2, 3)],
        annotations=[
            dict(id=10, image_id=1, bbox=[1, 2, 5, 6], iscrowd=0),
            dict(id=11, image_id=2, bbox=[0, 0, 8, 8], iscrowd=1),
            dict(id=12, image_id=2, bbox=[3, 3, 4, 4], iscrowd=0),
            dict(id=13, image_id=3, bbox=[0, 0, 0, 5], iscrowd=0)],
        categories=[dict(id=1, name='a')])
    ann = tmp_path / 'val.json'
    ann.write_text(json.dumps(coco))
    pairs = bm.inferencer_pairs(str(ann), 'imgs', 7)
    assert len(pairs) == 7
    for i, (target, query) in enumerate(pairs):
        assert target == osp.join('imgs', f'{[1, 2, 3][i % 3]}.png')
        assert query.img != target  # crowd and empty boxes never queries
        assert query.bbox in ([1, 2, 6, 8], [3, 3, 7, 7])
    coco['images'] = coco['images'][:1]
    ann.write_text(json.dumps(coco))
    with pytest.raises(ValueError, match='val.json'):
        bm.inferencer_pairs(str(ann), 'imgs', 3)


def test_run_memory_hook_records_each_draw():
    hook = bm.RunMemoryHook()
    for _ in range(2):
        hook.before_test_epoch(None)
        block = np.ones(32 * 1024 * 1024 // 8)
        del block
        hook.after_test_epoch(None, metrics={})
    assert len(hook.rows) == 2
    for row in hook.rows:
        assert set(row) == {'start', 'peak', 'end', 'workers', 'workers_mb'}
        # The 32 MiB block was resident during the draw, not after it.
        assert row['peak'] - row['end'] > 25 and row['workers'] == 0


def test_parse_args_refuses_what_it_cannot_measure():
    args = bm.parse_args(['cfg.py'])
    assert (args.runs, args.pairs, args.every, args.warmup,
            args.threads) == (5, 1000, 250, 50, 1)
    for argv in (['cfg.py', '--runs', '1'],
                 ['cfg.py', '--pairs', '10', '--warmup', '10']):
        with pytest.raises((SystemExit, ValueError)):
            bm.parse_args(argv)


def test_metric_mode_calls_the_test_metric_on_one_draws_records(
        tmp_path, capsys):
    """``--mode metric``: one query draw of the test, then the metric again
    and again on the records it kept; a row per measuring point."""
    from quickstart_utils import QUICKSTART_CFG, as_cli_options, \
        data_overrides, make_synthetic
    from mmengine.config import Config
    root = make_synthetic(str(tmp_path / 'data'), num_train=2, num_val=4)
    cfg = Config.fromfile(QUICKSTART_CFG)
    cfg.merge_from_dict(data_overrides(root))
    cfg.test_dataloader.dataset.num_negatives = 1
    ckpt = bm.random_checkpoint(cfg, str(tmp_path / 'init.pth'), 0)
    rows = bm.measure_metric(cfg, ckpt, calls=5, every=2,
                             work_dir=str(tmp_path / 'work'))
    assert [r['calls'] for r in rows] == [0, 2, 4, 5]
    # Every episode of the draw (positives and the negative targets).
    assert rows[0]['episodes'] > 4
    assert all(r['rss'] > 0 for r in rows)
    capsys.readouterr()
    rc = bm.main([QUICKSTART_CFG, '--mode', 'metric', '--calls', '3',
                  '--every', '1', '--checkpoint', ckpt, '--work-dir',
                  str(tmp_path / 'work2'), '--cfg-options'] +
                 as_cli_options(data_overrides(root)))
    out = capsys.readouterr().out
    assert 'metric RSS, call 1 to 3' in out and rc in (0, 1)
    assert out.count('calls: RSS') == 3

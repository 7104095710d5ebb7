"""Evaluation that can be trusted under distributed testing: testing with 2
processes (``tools/dist_test.sh``, gloo on CPU) gives the AP of 1 process
to 1e-6 and the same episodes, with an odd number of episodes split
unevenly across the ranks; the metric does not depend on the order the
ranks' parts are gathered in and refuses repeated episodes. (Testing twice
with one process: ``test_test_twice_is_identical_and_out_keeps_every_run``
in tests/test_tools.py.)"""
import glob
import json
import os
import os.path as osp
import pickle
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmdet.registry import DATASETS
from mmengine.config import Config
from quickstart_utils import (QUICKSTART_CFG, REPO, as_cli_options,
                              data_overrides, make_synthetic,
                              random_checkpoint)

from oneshot.datasets.samplers import ImageGroupedSampler
from oneshot.evaluation import OneShotMetric


@pytest.fixture(scope='module')
def setup(tmp_path_factory) -> dict:
    """5 val images with one negative target per class: 29 episodes,
    split 20 / 9 by ``ImageGroupedSampler`` over 2 ranks; a seeded
    random-weight checkpoint of the quickstart model."""
    tmp = tmp_path_factory.mktemp('dist_test')
    root = make_synthetic(str(tmp / 'data'), num_train=4, num_val=5)
    opts = {**data_overrides(root), 'test_dataloader.dataset.num_negatives': 1}
    cfg = Config.fromfile(QUICKSTART_CFG)
    cfg.merge_from_dict(opts)
    ckpt = random_checkpoint(cfg, str(tmp / 'model.pth'))
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    parts = []
    for rank in range(2):
        sampler = ImageGroupedSampler(dataset)
        sampler.rank, sampler.world_size = rank, 2
        parts.append(sampler._rank_indices())
    return dict(ckpt=ckpt, opts=as_cli_options(opts), tmp=tmp,
                num_episodes=len(dataset), parts=parts)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_run(cmd, work_dir: str, **env_extra) -> tuple:
    """Run a test command; returns (oneshot_runs.json, per-run episodes of
    ``--out``, output)."""
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1',
               **env_extra)
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    (report, ) = glob.glob(osp.join(work_dir, '**', 'oneshot_runs.json'),
                           recursive=True)
    with open(report) as f:
        report = json.load(f)
    runs = []
    for r in range(report['num_runs']):
        with open(osp.join(work_dir, f'preds_run{r}.pkl'), 'rb') as f:
            runs.append(pickle.load(f))
    return report, runs, out


test_run.__test__ = False  # a helper, not a test


def test_two_processes_give_the_ap_of_one(setup):
    parts = setup['parts']
    n = setup['num_episodes']
    # The case the issue asks for: an odd count, unevenly split, no padding.
    assert n % 2 == 1 and len(parts[0]) != len(parts[1])
    assert sorted(parts[0] + parts[1]) == list(range(n))

    results = {}
    for procs in (1, 2):
        work = str(setup['tmp'] / f'procs{procs}')
        args = ['--work-dir', work, '--runs', '2', '--out',
                osp.join(work, 'preds.pkl'), '--cfg-options', *setup['opts']]
        if procs == 1:
            cmd = [sys.executable, 'tools/test.py', QUICKSTART_CFG,
                   setup['ckpt'], *args]
            results[procs] = test_run(cmd, work)
        else:
            cmd = ['bash', 'tools/dist_test.sh', QUICKSTART_CFG,
                   setup['ckpt'], '2', *args]
            # PYTHON: the interpreter running this test, not the first
            # python on PATH.
            results[procs] = test_run(cmd, work, PYTHON=sys.executable,
                                      PORT=str(free_port()))
    one, two = results[1][0], results[2][0]
    # mmengine logs the world size as 'GPU number' whatever the device.
    assert 'GPU number: 2' in results[2][2], results[2][2][-3000:]

    assert one['num_runs'] == two['num_runs'] == 2
    for a, b in zip(one['runs'], two['runs']):
        assert list(a) == list(b)
        for key in a:
            assert abs(a[key] - b[key]) <= 1e-6, (key, a[key], b[key])
    for group in ('mean', 'std'):
        for key in one[group]:
            assert abs(one[group][key] - two[group][key]) <= 1e-6, key
    # The metric saw something to score: the detector's AP, the
    # query-blind level (a function of every episode's ground truth, so a
    # dropped or repeated episode would change it) and false alarms.
    assert one['runs'][0]['oneshot/blind_AP50'] > 0
    assert 'oneshot/FA_per_neg' in one['runs'][0]

    # --out: every episode once, in dataset order, same predictions.
    for run_one, run_two in zip(results[1][1], results[2][1]):
        assert [e['episode_id'] for e in run_one] == list(range(n))
        assert [e['episode_id'] for e in run_two] == list(range(n))
        for a, b in zip(run_one, run_two):
            assert a['query_ann_ids'] == b['query_ann_ids']
            torch.testing.assert_close(a['pred_instances']['scores'],
                                       b['pred_instances']['scores'],
                                       rtol=0, atol=1e-6)
            torch.testing.assert_close(a['pred_instances']['bboxes'],
                                       b['pred_instances']['bboxes'],
                                       rtol=0, atol=1e-4)


META = dict(classes=('a', 'b'), seen_classes=('a', ),
            unseen_classes=('b', ))


def record(episode_id: int, label: int, hit: bool, run: int = 0) -> dict:
    """An episode with one ground-truth box and one detection of score 0.9
    (ties everywhere: COCOeval ranks them in input order)."""
    gt = np.array([[0., 0., 10., 10.]])
    box = gt if hit else np.array([[50., 50., 60., 60.]])
    return dict(episode_id=episode_id, img_id=episode_id, label=label,
                run=run, negative=False, pred_bboxes=box,
                pred_scores=np.array([0.9]), gt_bboxes=gt,
                ignored_bboxes=np.zeros((0, 4)),
                other_gt_bboxes=np.zeros((0, 4)),
                other_gt_labels=np.zeros(0, np.int64))


def metrics_of(results):
    metric = OneShotMetric(blind_seeds=2)
    metric.dataset_meta = META
    return metric.compute_metrics(results)


def test_metric_is_independent_of_gathering_order():
    # Class a: a miss then a hit with equal scores. In input order the
    # miss ranks first (AP 51/101); reversed, the hit would (AP 1).
    ordered = [record(0, 0, False), record(1, 0, True), record(2, 1, True),
               record(3, 0, True), record(4, 1, False)]
    expected = metrics_of(ordered)
    # The parts of two ranks (contiguous blocks) gathered interleaved, as
    # mmengine's collect_results does, and other permutations.
    interleaved = [ordered[i] for i in (0, 3, 1, 4, 2)]
    for results in (interleaved, ordered[::-1], ordered[2:] + ordered[:2]):
        assert metrics_of(results) == expected


def test_metric_refuses_repeated_episodes():
    results = [record(0, 0, True), record(1, 1, True), record(0, 0, True)]
    with pytest.raises(ValueError, match=r'\(0, 0\)'):
        metrics_of(results)
    # The same episode id in two runs is two episodes.
    metrics_of([record(0, 0, True), record(0, 0, True, run=1)])


def fake_interpreter(path, log: str) -> str:
    """An executable that writes its arguments to ``log`` and exits 0."""
    path.write_text(f'#!/bin/sh\necho "$0 $@" >> {log}\n')
    path.chmod(0o755)
    return str(path)


@pytest.mark.parametrize('script, args, tool_call', [
    ('tools/dist_test.sh', ['cfg.py', 'model.pth', '2', '--runs', '3'],
     ['tools/test.py', 'cfg.py', 'model.pth', '--launcher', 'pytorch',
      '--runs', '3']),
    ('tools/dist_train.sh', ['cfg.py', '2', '--amp'],
     ['tools/train.py', 'cfg.py', '--launcher', 'pytorch', '--amp']),
])
def test_dist_scripts_start_the_interpreter_they_are_given(
        script, args, tool_call, tmp_path):
    log = str(tmp_path / 'calls.log')
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    # A `python` first on PATH, which must not be the one started.
    fake_interpreter(bin_dir / 'python', log)
    chosen = fake_interpreter(tmp_path / 'my-python', log)
    env = {k: v for k, v in os.environ.items() if k != 'PYTHON'}
    env['PATH'] = f'{bin_dir}{os.pathsep}{env["PATH"]}'

    def started(**extra) -> list:
        if osp.exists(log):
            os.remove(log)
        proc = subprocess.run(['bash', script, *args], cwd=REPO,
                              env=dict(env, **extra), capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        with open(log) as f:
            return f.read().split()

    call = started(PYTHON=chosen)
    assert call[0] == chosen
    assert call[1:3] == ['-m', 'torch.distributed.run']
    assert '--nproc_per_node=2' in call
    assert call[-len(tool_call):] == tool_call
    # Without PYTHON: python3, not the `python` first on PATH.
    fake_interpreter(bin_dir / 'python3', log)
    assert started()[0] == str(bin_dir / 'python3')

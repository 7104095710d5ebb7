"""Kill and resume, identically: a training process of the tiny quickstart
model is killed for real (SIGKILL from a hook, no exception, no final
checkpoint), resumed with ``tools/train.py --resume``, and every loss
logged after the resume equals the uninterrupted run's, for an
iteration-based loop (InfiniteEpisodeSampler, 2 persistent dataloader
workers) and an epoch-based one (EpisodeSampler, validation every epoch)."""
import glob
import json
import os
import os.path as osp
import signal
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from quickstart_utils import (QUICKSTART_CFG, REPO, data_overrides,
                              make_synthetic, quickstart_cfg)

from oneshot.engine import build_runner
from oneshot.utils import get_rng_state, set_rng_state


@pytest.fixture(scope='module')
def synthetic(tmp_path_factory) -> str:
    return make_synthetic(str(tmp_path_factory.mktemp('synthetic')),
                          num_train=12, num_val=3)


def iter_cfg(data_root: str, work_dir: str) -> Config:
    """12 iterations, a checkpoint every 4, 2 persistent workers."""
    cfg = quickstart_cfg(data_root, work_dir, max_iters=12, ckpt_interval=4)
    cfg.train_dataloader.num_workers = 2
    cfg.train_dataloader.persistent_workers = True
    return cfg


def epoch_cfg(data_root: str, work_dir: str) -> Config:
    """3 epochs of the 12 training images (batch 2: 6 iterations each), a
    checkpoint and a validation after every epoch."""
    cfg = quickstart_cfg(data_root, work_dir)
    base = Config.fromfile(QUICKSTART_CFG)
    cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=3,
                         val_interval=1)
    cfg.train_dataloader.sampler = dict(type='EpisodeSampler', shuffle=True)
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', by_epoch=True, interval=1, max_keep_ckpts=-1)
    cfg.log_processor = dict(by_epoch=True)
    cfg.param_scheduler = [
        dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
             end=4),
        dict(type='MultiStepLR', by_epoch=True, begin=0, end=3,
             milestones=[2], gamma=0.1)]
    cfg.val_dataloader = base.val_dataloader
    cfg.val_dataloader.dataset.num_negatives = 0
    cfg.val_cfg = dict(type='ValLoop')
    cfg.val_evaluator = dict(type='OneShotMetric', blind_seeds=0)
    cfg.merge_from_dict({k: v for k, v in data_overrides(data_root).items()
                         if k.startswith('val_dataloader')})
    return cfg


def train(cfg: Config, path: str, kill_after: int = None,
          resume: bool = False) -> subprocess.CompletedProcess:
    """``tools/train.py`` on ``cfg`` (written to ``path``), optionally killed
    with SIGKILL after iteration ``kill_after``."""
    cfg.log_processor.window_size = 1  # log each iteration's own loss
    if kill_after is not None:
        cfg.custom_imports = dict(imports=['oneshot', 'kill_hook'],
                                  allow_failed_imports=False)
        cfg.custom_hooks = [dict(type='KillAfterIterationHook',
                                 iteration=kill_after)]
    cfg.dump(path)
    cmd = [sys.executable, 'tools/train.py', path]
    if resume:
        cmd.append('--resume')
    env = dict(os.environ, OMP_NUM_THREADS='1',
               PYTHONPATH=os.pathsep.join([REPO, osp.join(REPO, 'tests')]))
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)


def train_in_process(cfg: Config) -> None:
    """The uninterrupted run, in this process (saves a start-up) with one
    thread like the subprocesses: the losses are compared bit for bit."""
    cfg.log_processor.window_size = 1
    # A visualizer of its own: mmengine reuses an instance of the same name,
    # which would write this run's scalars into an earlier run's work dir.
    cfg.visualizer.name = f'visualizer:{cfg.work_dir}'
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        build_runner(cfg).train()
    finally:
        torch.set_num_threads(threads)


def logged_losses(work_dir: str) -> dict:
    """``{iteration: [loss, ...]}`` from every scalars.json of the work
    dir (a resumed run writes a second one)."""
    out: dict = {}
    for path in sorted(glob.glob(
            osp.join(work_dir, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            for line in f:
                record = json.loads(line)
                if 'loss' in record:
                    out.setdefault(record['step'], []).append(record['loss'])
    return out


def kill_and_resume(tmp_path, make_cfg, data_root, kill_after, resume_at,
                    total):
    """Losses of the uninterrupted run and of the killed + resumed one."""
    full, broken = str(tmp_path / 'full'), str(tmp_path / 'broken')
    train_in_process(make_cfg(data_root, full))

    proc = train(make_cfg(data_root, broken), str(tmp_path / 'broken.py'),
                 kill_after=kill_after)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-5000:]
    with open(osp.join(broken, 'last_checkpoint')) as f:
        last = f.read().strip()
    ckpt = torch.load(last, map_location='cpu', weights_only=False)
    assert ckpt['meta']['iter'] == resume_at

    proc = train(make_cfg(data_root, broken), str(tmp_path / 'resumed.py'),
                 resume=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    assert f'Restored the Python, numpy and torch generator states of ' \
        f'iteration {resume_at}' in out
    assert 'will not' not in out  # no warning that the run differs

    expected, got = logged_losses(full), logged_losses(broken)
    assert sorted(expected) == list(range(1, total + 1))
    # Iterations up to the kill were logged twice when repeated after the
    # resume (resume_at + 1 .. kill_after), once otherwise.
    assert sorted(got) == sorted(expected)
    for it in range(1, total + 1):
        runs = 2 if resume_at < it <= kill_after else 1
        assert got[it] == expected[it] * runs, (it, got[it], expected[it])
    return expected, got, ckpt


def test_iteration_based_kill_and_resume(synthetic, tmp_path):
    expected, got, ckpt = kill_and_resume(
        tmp_path, iter_cfg, synthetic, kill_after=7, resume_at=4, total=12)
    state = ckpt['resume_state']
    assert state['iter'] == 4 and len(state['rng']) == 1
    assert state['data']['sampler'] == 'InfiniteEpisodeSampler'
    assert state['data']['batch_size'] == 2


def test_epoch_based_kill_and_resume(synthetic, tmp_path):
    # Killed in the middle of epoch 3 (iteration 15 of 18); resumed from
    # the checkpoint of epoch 2 (iteration 12), after which the
    # uninterrupted run validated: validation must not move the
    # generators either.
    expected, got, ckpt = kill_and_resume(
        tmp_path, epoch_cfg, synthetic, kill_after=15, resume_at=12,
        total=18)
    assert ckpt['meta']['epoch'] == 2
    assert ckpt['resume_state']['data']['iters_per_epoch'] == 6


def test_state_is_plain_and_round_trips(tmp_path):
    """The saved states load weights-only and restore every generator."""
    import random

    import numpy as np
    state = get_rng_state()
    path = str(tmp_path / 'state.pth')
    torch.save(state, path)
    loaded = torch.load(path, weights_only=True)
    draws = (random.random(), np.random.rand(), torch.rand(1).item(),
             np.random.randn())
    set_rng_state(loaded)
    assert (random.random(), np.random.rand(), torch.rand(1).item(),
            np.random.randn()) == draws

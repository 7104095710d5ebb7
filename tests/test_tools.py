"""Command-line tools on the quickstart config: train/test smoke runs,
--resume restoring weights, optimizer state and learning rate, seeded
reproducibility, and 2-process distributed training on CPU (gloo)."""
import copy
import glob
import json
import os
import os.path as osp
import socket
import subprocess
import sys

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner
from quickstart_utils import (QUICKSTART_CFG, REPO, as_cli_options,
                              data_overrides, make_synthetic, quickstart_cfg)

from oneshot.engine import OneShotRunner


@pytest.fixture(scope='module')
def synthetic(tmp_path_factory) -> str:
    return make_synthetic(str(tmp_path_factory.mktemp('synthetic')))


def run(cmd, timeout=600) -> str:
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f'{cmd} failed:\n{out[-6000:]}'
    return out


def short_run_options(data_root: str, iters: int = 2) -> list:
    return as_cli_options({
        **data_overrides(data_root),
        'train_cfg.max_iters': iters,
        'train_cfg.val_interval': 10**6,
        'train_dataloader.batch_size': 2,
        'default_hooks.checkpoint.interval': iters,
        'default_hooks.logger.interval': 1,
    })


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_train_then_test_cli(synthetic, tmp_path):
    work = str(tmp_path / 'work')
    opts = short_run_options(synthetic)
    run([sys.executable, 'tools/train.py', QUICKSTART_CFG, '--work-dir',
         work, '--cfg-options', *opts])
    with open(osp.join(work, 'last_checkpoint')) as f:
        ckpt = f.read().strip()
    assert ckpt.endswith('iter_2.pth') and osp.isfile(ckpt)

    out = run([sys.executable, 'tools/test.py', QUICKSTART_CFG, ckpt,
               '--work-dir', osp.join(work, 'test'), '--runs', '2',
               '--cfg-options', *opts])
    assert 'unseen_AP50' in out
    reports = glob.glob(
        osp.join(work, 'test', '**', 'oneshot_runs.json'), recursive=True)
    assert len(reports) == 1, reports
    with open(reports[0]) as f:
        report = json.load(f)
    assert len(report['runs']) == 2


class CaptureStateHook(Hook):
    """Records the runner's state right after checkpoint loading, before the
    first training iteration (``before_train`` follows ``load_or_resume``).
    """

    def before_train(self, runner) -> None:
        self.iter = runner.iter
        self.weights = {k: v.detach().clone()
                        for k, v in runner.model.state_dict().items()}
        # state_dict() holds references to the live buffers: copy them.
        self.optimizer = copy.deepcopy(
            runner.optim_wrapper.optimizer.state_dict())
        self.lr = [g['lr'] for g in runner.optim_wrapper.param_groups]


def test_resume_restores_iteration_weights_optimizer_and_lr(
        synthetic, tmp_path):
    # Uninterrupted: 4 iterations, checkpoints at 2 and 4.
    first = Runner.from_cfg(
        quickstart_cfg(synthetic, str(tmp_path / 'a'), max_iters=4))
    first.train()
    final = {k: v.detach().clone()
             for k, v in first.model.state_dict().items()}
    ckpt_path = str(tmp_path / 'a' / 'iter_2.pth')
    ckpt = torch.load(ckpt_path, map_location='cpu', weights_only=False)

    # Resumed from iteration 2 in a fresh runner (new work dir). Resuming
    # reads checkpoints through the project's runner: `import oneshot`
    # leaves mmengine's own loading (weights-only) alone.
    cfg = quickstart_cfg(synthetic, str(tmp_path / 'b'), max_iters=4)
    cfg.resume = True
    cfg.load_from = ckpt_path
    second = OneShotRunner.from_cfg(cfg)
    capture = CaptureStateHook()
    second.register_hook(capture, priority='VERY_LOW')
    second.train()

    assert capture.iter == 2
    for name, value in ckpt['state_dict'].items():
        torch.testing.assert_close(capture.weights[name], value, rtol=0,
                                   atol=0)
    saved_lr = [g['lr'] for g in ckpt['optimizer']['param_groups']]
    assert capture.lr == saved_lr
    saved_state = ckpt['optimizer']['state']
    assert len(saved_state) > 0
    for key, state in saved_state.items():
        torch.testing.assert_close(
            capture.optimizer['state'][key]['momentum_buffer'],
            state['momentum_buffer'], rtol=0, atol=0)
    # The warm-up scheduler state came back too: the lr at iteration 2 is
    # the warm-up lr, not the base lr of a fresh schedule.
    base_lr = cfg.optim_wrapper.optimizer.lr
    assert saved_lr[0] < base_lr

    # Training went on from iteration 2 to 4. (It does not land bit for bit
    # on the uninterrupted weights: mmengine checkpoints do not store the
    # torch RNG state that mmdet's RoI samplers draw from.)
    assert second.iter == 4
    resumed = second.model.state_dict()
    assert any(not torch.equal(resumed[k], v)
               for k, v in ckpt['state_dict'].items())
    assert set(resumed) == set(final)


def train_losses(data_root: str, work_dir: str) -> list:
    runner = Runner.from_cfg(
        quickstart_cfg(data_root, work_dir, max_iters=3, ckpt_interval=3))
    runner.train()
    return list(runner.message_hub.get_scalar('train/loss').data[0])


def test_same_seed_same_losses(synthetic, tmp_path):
    a = train_losses(synthetic, str(tmp_path / 'a'))
    b = train_losses(synthetic, str(tmp_path / 'b'))
    assert len(a) == 3
    assert a == b


def test_distributed_training_two_cpu_processes(synthetic, tmp_path):
    work = str(tmp_path / 'dist')
    env_port = str(free_port())
    cmd = ['bash', 'tools/dist_train.sh', QUICKSTART_CFG, '2', '--work-dir',
           work, '--cfg-options', *short_run_options(synthetic)]
    env = dict(os.environ, PYTHONPATH=REPO, PORT=env_port, OMP_NUM_THREADS='1')
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert osp.isfile(osp.join(work, 'iter_2.pth'))
    logs = glob.glob(osp.join(work, '*', '*.log'))
    assert logs, out[-3000:]
    with open(logs[0]) as f:
        log = f.read()
    # mmengine logs the world size as 'GPU number' whatever the device.
    assert 'Distributed training: True' in log
    assert 'GPU number: 2' in log
    assert "'backend': 'gloo'" in log
    assert 'Iter(train) [2/2]' in log


def test_test_twice_is_identical_and_out_keeps_every_run(synthetic, tmp_path):
    """Testing twice on one checkpoint gives a byte-identical
    ``oneshot_runs.json``; ``--out preds.pkl`` with 2 runs writes
    ``preds_run0.pkl`` and ``preds_run1.pkl``, each the episodes of its own
    query draw."""
    import pickle
    work = str(tmp_path / 'work')
    opts = short_run_options(synthetic)
    run([sys.executable, 'tools/train.py', QUICKSTART_CFG, '--work-dir',
         work, '--cfg-options', *opts])
    ckpt = osp.join(work, 'iter_2.pth')
    reports, preds = [], []
    for attempt in range(2):
        test_dir = osp.join(work, f'test{attempt}')
        out = osp.join(test_dir, 'preds.pkl')
        log = run([sys.executable, 'tools/test.py', QUICKSTART_CFG, ckpt,
                   '--work-dir', test_dir, '--runs', '2', '--out', out,
                   '--cfg-options', *opts])
        (report, ) = glob.glob(osp.join(test_dir, '**', 'oneshot_runs.json'),
                               recursive=True)
        with open(report, 'rb') as f:
            reports.append(f.read())
        assert not osp.exists(out)
        assert sorted(f for f in os.listdir(test_dir)
                      if f.endswith('.pkl')) == ['preds_run0.pkl',
                                                 'preds_run1.pkl']
        per_run = []
        for r in range(2):
            path = osp.join(test_dir, f'preds_run{r}.pkl')
            assert f'saved to {path}' in log
            with open(path, 'rb') as f:
                episodes = pickle.load(f)
            assert episodes and {e['run'] for e in episodes} == {r}
            assert all('pred_instances' in e for e in episodes)
            per_run.append(episodes)
        # Two draws: other queries for some episodes.
        assert [e['query_ann_ids'] for e in per_run[0]] != \
            [e['query_ann_ids'] for e in per_run[1]]
        preds.append(per_run)
    assert reports[0] == reports[1]
    assert len(json.loads(reports[0])['runs']) == 2
    for run_a, run_b in zip(*preds):
        for a, b in zip(run_a, run_b):
            assert a['query_ann_ids'] == b['query_ann_ids']
            assert torch.equal(a['pred_instances']['scores'],
                               b['pred_instances']['scores'])
            assert torch.equal(a['pred_instances']['bboxes'],
                               b['pred_instances']['bboxes'])

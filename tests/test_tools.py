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
                              data_overrides, make_synthetic, quickstart_cfg,
                              random_checkpoint)

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
    # PYTHON: the interpreter running this test, not the first python on
    # PATH.
    env = dict(os.environ, PYTHONPATH=REPO, PORT=env_port, OMP_NUM_THREADS='1',
               PYTHON=sys.executable)
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


def _load_demo_module():
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'demo_tool', osp.join(REPO, 'tools', 'demo.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_demo_accepts_negative_query_box_values():
    demo = _load_demo_module()
    for argv in (['t.png', '--query', 'q.png', '--query-box', '-50,-1,20,30'],
                 ['t.png', '--query', 'q.png', '--query-box=-50,-1,20,30']):
        assert demo.parse_args(argv).query_box == [[-50.0, -1.0, 20.0, 30.0]]
    args = demo.parse_args(['t.png', '--query', 'a.png', '--query-box',
                            '-.5,0,9,9', '--query', 'b.png', '--query-box',
                            'full'])
    assert args.query_box == [[-0.5, 0.0, 9.0, 9.0], None]
    # A negative value that is not a box is still named as a bad box.
    with pytest.raises(SystemExit):
        demo.parse_args(['t.png', '--query', 'q.png', '--query-box', '-5'])


@pytest.fixture(scope='module')
def demo_env(synthetic, tmp_path_factory):
    """A random-weight checkpoint of the quickstart model and a folder of
    targets: three val images around one file that is not an image."""
    from mmengine.config import Config
    tmp = tmp_path_factory.mktemp('demo')
    cfg = Config.fromfile(QUICKSTART_CFG)
    cfg.merge_from_dict(data_overrides(synthetic))
    cfg_path = str(tmp / 'cfg.py')
    cfg.dump(cfg_path)
    ckpt = random_checkpoint(cfg, str(tmp / 'model.pth'))
    targets = tmp / 'targets'
    targets.mkdir()
    val = osp.join(synthetic, 'val')
    for name in ('000000.png', '000001.png', '000002.png'):
        with open(osp.join(val, name), 'rb') as src:
            (targets / name).write_bytes(src.read())
    (targets / '000001_broken.png').write_bytes(b'not an image at all')
    return dict(cfg=cfg_path, ckpt=ckpt, targets=str(targets),
                query=osp.join(val, '000003.png'))


def demo_cmd(env, target, out, box='10,10,60,70') -> list:
    return [sys.executable, 'tools/demo.py', target, '--query', env['query'],
            '--query-box', box, '--config', env['cfg'], '--checkpoint',
            env['ckpt'], '--out', out, '--device', 'cpu', '--score-thr',
            '0.05']


def run_failing(cmd) -> str:
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode != 0, proc.stdout[-3000:]
    return proc.stdout + proc.stderr


def test_demo_negative_query_box_reaches_the_box_check(demo_env, tmp_path):
    # Parsed (no argparse 'expected one argument'), then refused like any
    # box outside the image, naming the query, without a traceback.
    out = run_failing(demo_cmd(demo_env, demo_env['targets'],
                               str(tmp_path / 'demo'), box='-50,-10,60,70'))
    print(out.strip().splitlines()[-1])
    assert 'expected one argument' not in out
    assert (f"tools/demo.py: Query {demo_env['query']!r}: box [-50.0, -10.0, "
            '60.0, 70.0] is outside the 160x160 image') in out
    assert 'Traceback' not in out


def test_demo_skips_an_unreadable_target_and_keeps_the_others(
        demo_env, tmp_path):
    out = str(tmp_path / 'demo')
    log = run(demo_cmd(demo_env, demo_env['targets'], out))
    broken = osp.join(demo_env['targets'], '000001_broken.png')
    assert (f'[demo] WARNING: Target {broken!r}: cannot decode {broken!r} '
            'as an image. Skipped; going on with the other targets.') in log
    final = [line for line in log.splitlines() if line.startswith('[demo]')
             and 'WARNING' not in line][-1]
    print(final)
    assert final.startswith('[demo] 3 target(s) x 1 query(ies)')
    assert final.endswith(
        '; skipped 1 unreadable target(s): 000001_broken.png')
    with open(osp.join(out, 'detections.json')) as f:
        summary = json.load(f)
    assert [osp.basename(r['target']) for r in summary['results']] == [
        '000000.png', '000001.png', '000002.png']  # also the one after it
    assert [osp.basename(s['target']) for s in summary['skipped']] == [
        '000001_broken.png']
    assert 'cannot decode' in summary['skipped'][0]['error']
    assert 'interrupted' not in summary
    assert summary['queries'][0]['shots'][0]['bbox'] == [10, 10, 60, 70]
    assert sorted(os.listdir(out)) == [
        '000000.png', '000001.png', '000002.png', 'detections.json']


def test_demo_on_one_unreadable_target_file_is_an_error(demo_env, tmp_path):
    broken = osp.join(demo_env['targets'], '000001_broken.png')
    out = str(tmp_path / 'demo')
    log = run_failing(demo_cmd(demo_env, broken, out))
    assert f'tools/demo.py: Target {broken!r}: cannot decode' in log
    assert 'Traceback' not in log
    assert not osp.exists(osp.join(out, 'detections.json'))

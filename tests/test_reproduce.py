"""tools/reproduce.sh, tools/slurm_train.sh, tools/slurm_test.sh: syntax,
the commands of a dry run (COCO splits 1-4, VOC, Slurm), and one real run
on the quickstart config (train, test, the table; a rerun skips both)."""
import os
import os.path as osp
import socket
import subprocess
import sys

import pytest
from quickstart_utils import (QUICKSTART_CFG, REPO, as_cli_options,
                              data_overrides, make_synthetic)

SCRIPTS = ('tools/reproduce.sh', 'tools/slurm_train.sh',
           'tools/slurm_test.sh')


def run(args, timeout=900, **env):
    full_env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1',
                    PYTHON=sys.executable, **env)
    proc = subprocess.run(['bash', *args], cwd=REPO, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.parametrize('script', SCRIPTS)
def test_syntax(script):
    proc = subprocess.run(['bash', '-n', script], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def commands(stdout):
    return [line[2:] for line in stdout.splitlines()
            if line.startswith('+ ')]


def test_dry_run_coco(tmp_path):
    rc, out, err = run(['tools/reproduce.sh', 'coae', '4'], DRY_RUN='1',
                       WORK_ROOT=str(tmp_path))
    assert rc == 0, err
    cmds = commands(out)
    assert len(cmds) == 9
    for i in range(1, 5):
        cfg = f'configs/coae/coae_r50-c4_8xb2-12e_coco-split{i}.py'
        work = str(tmp_path / f'coae_r50-c4_8xb2-12e_coco-split{i}')
        train, test = cmds[2 * i - 2].split(), cmds[2 * i - 1].split()
        assert train[:4] == ['bash', 'tools/dist_train.sh', cfg, '4']
        assert ['--work-dir', work] == train[4:6]
        assert '--auto-scale-lr' in train  # 4 GPUs, configs for 8
        assert test[:3] == ['bash', 'tools/dist_test.sh', cfg]
        assert test[4] == '4' and f'{work}/test' in test
        assert 'test_dataloader.dataset.episode_classes=all' in test
    assert cmds[-1].split()[1:3] == ['tools/analysis/collect_results.py',
                                     str(tmp_path)]


def test_dry_run_voc_on_slurm(tmp_path):
    rc, out, err = run(['tools/reproduce.sh', 'matching-fcos-sarm'],
                       DRY_RUN='1', DATA='voc', LAUNCHER='slurm',
                       PARTITION='gpu', RUNS='3', WORK_ROOT=str(tmp_path))
    assert rc == 0, err
    train, test, collect = (c.split() for c in commands(out))
    cfg = 'configs/matching-fcos/matching-fcos-sarm_r50-fpn_8xb2-12e_voc.py'
    assert train[:4] == ['env', 'GPUS=8', 'bash', 'tools/slurm_train.sh']
    assert train[4] == 'gpu' and train[6] == cfg
    assert '--auto-scale-lr' not in train
    assert test[3] == 'tools/slurm_test.sh' and test[6] == cfg
    assert test[test.index('--runs') + 1] == '3'


def test_bad_arguments():
    rc, _, err = run(['tools/reproduce.sh', 'nope'])
    assert rc == 2 and "unknown METHOD 'nope'" in err
    rc, _, err = run(['tools/reproduce.sh', 'coae'], LAUNCHER='slurm')
    assert rc == 2 and 'PARTITION' in err
    rc, _, err = run(['tools/reproduce.sh', 'coae', 'x'])
    assert rc == 2 and 'GPUS' in err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_real_run_on_the_quickstart_config(tmp_path):
    root = make_synthetic(str(tmp_path / 'data'), num_train=16, num_val=4)
    data = as_cli_options(data_overrides(root))
    train_args = ['--cfg-options', *data, 'train_cfg.max_iters=2',
                  'train_cfg.val_interval=1000000',
                  'train_dataloader.batch_size=2',
                  'default_hooks.checkpoint.interval=2']
    work_root = str(tmp_path / 'reproduce')
    env = dict(CONFIGS=QUICKSTART_CFG, RUNS='1', WORK_ROOT=work_root,
               TRAIN_ARGS=' '.join(train_args),
               TEST_ARGS=' '.join(['--cfg-options', *data]),
               PORT=str(free_port()))
    rc, out, err = run(['tools/reproduce.sh', 'quickstart', '1'], **env)
    assert rc == 0, (out + err)[-5000:]
    work = osp.join(work_root, 'siamese-faster-rcnn_r18-tiny_synthetic')
    assert osp.isfile(osp.join(work, 'iter_2.pth'))
    assert osp.isfile(osp.join(work, 'train_done'))
    with open(osp.join(work_root, 'table.md')) as f:
        table = f.read()
    row = next(line for line in table.splitlines()
               if 'siamese-faster-rcnn_r18-tiny_synthetic' in line)
    cells = [c.strip() for c in row.strip('|').split('|')]
    assert cells[2] == 'custom' and cells[3] == '1'
    assert '±' in cells[4] and '±' in cells[5]  # seen, unseen AP50
    assert osp.isfile(osp.join(work_root, 'table.csv'))
    assert row in out  # printed at the end

    # A rerun trains and tests nothing again.
    env['PORT'] = str(free_port())
    rc, out, err = run(['tools/reproduce.sh', 'quickstart', '1'], **env)
    assert rc == 0, (out + err)[-5000:]
    assert 'training finished before' in out and 'tested before' in out
    assert 'dist_train' not in out + err

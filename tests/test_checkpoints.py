"""Checkpoint loading is safe and strict everywhere (docs/checkpoints.md).

- A crafted pickle whose unpickling would run code (``__reduce__`` ->
  ``os.system`` / ``exec`` creating a marker file) is refused by the demo,
  the inferencer, ``tools/test.py`` and ``load_from`` (``tools/train.py``),
  and the marker is never created; only the explicit opt-in unpickles it.
- A run's own mmengine checkpoint loads without any opt-in, and
  ``--resume`` of it works; auto-resume skips an unreadable newest file.
- A checkpoint of another config is an error naming both files and the
  first differing parameters; empty and truncated files are errors naming
  the file.
- ``tools/model_converters/publish_model.py`` writes a weights-only file
  named with its sha256 prefix.
- ``import oneshot`` leaves mmengine's own checkpoint loading alone.
"""
import glob
import hashlib
import importlib.util
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.registry import init_default_scope
from quickstart_utils import (QUICKSTART_CFG, REPO, as_cli_options,
                              data_overrides, make_synthetic, quickstart_cfg)

from oneshot.apis import OneShotInferencer
from oneshot.engine import OneShotRunner
from oneshot.utils.checkpoint import (CheckpointError,
                                      CheckpointMismatchError,
                                      UntrustedCheckpointError,
                                      load_checkpoint_file)

CAT_CFG = osp.join(REPO, 'configs/quickstart/cat_r18-tiny_synthetic.py')


class _RunsShell:
    """Unpickling this calls ``os.system(command)``."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command, ))


class _RunsExec:
    """Unpickling this calls ``exec(source)``."""

    def __init__(self, source: str) -> None:
        self.source = source

    def __reduce__(self):
        return (exec, (self.source, ))


def run(cmd, timeout=600):
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr


def cli_options(data_root: str, iters: int = 2) -> list:
    return as_cli_options({
        **data_overrides(data_root),
        'train_cfg.max_iters': iters,
        'train_cfg.val_interval': 10**6,
        'train_dataloader.batch_size': 2,
        'default_hooks.checkpoint.interval': 2,
        'default_hooks.logger.interval': 1,
    })


@pytest.fixture(scope='module')
def env(tmp_path_factory):
    """Synthetic data, a 2-iteration training run (its own checkpoint), a
    checkpoint of another config, and two crafted pickles carrying the
    real weights plus a payload in ``meta``."""
    tmp = tmp_path_factory.mktemp('checkpoints')
    root = make_synthetic(str(tmp / 'data'), num_train=16, num_val=4)
    work = str(tmp / 'train')
    runner = OneShotRunner.from_cfg(
        quickstart_cfg(root, work, max_iters=2, ckpt_interval=2))
    runner.train()
    own = osp.join(work, 'iter_2.pth')
    state = torch.load(own, map_location='cpu',
                       weights_only=False)['state_dict']

    markers = dict(shell=str(tmp / 'MARKER_shell'),
                   exec=str(tmp / 'MARKER_exec'))
    evil = dict(
        shell=str(tmp / 'evil_shell.pth'), exec=str(tmp / 'evil_exec.pth'))
    torch.save(dict(state_dict=state,
                    meta=dict(x=_RunsShell(f'touch {markers["shell"]}'))),
               evil['shell'])
    torch.save(dict(state_dict=state,
                    meta=dict(x=_RunsExec(
                        f'open({markers["exec"]!r}, "w").close()'))),
               evil['exec'])

    cat_cfg = Config.fromfile(CAT_CFG)
    init_default_scope('mmdet')
    other = str(tmp / 'cat_model.pth')
    torch.save(dict(state_dict=MODELS.build(cat_cfg.model).state_dict(),
                    meta=dict()), other)

    cfg = Config.fromfile(QUICKSTART_CFG)
    cfg.merge_from_dict(data_overrides(root))
    cfg_path = str(tmp / 'quickstart_cfg.py')
    cfg.dump(cfg_path)
    return dict(tmp=tmp, root=root, own=own, evil=evil, markers=markers,
                other=other, cfg=cfg, cfg_path=cfg_path)


def assert_no_marker(env):
    for marker in env['markers'].values():
        assert not osp.exists(marker), f'the payload ran: {marker}'


def test_the_payload_is_real(env, tmp_path):
    """Control: a plain full unpickling runs the payload (in a subprocess,
    with its own marker), so the refusals below do mean something."""
    marker = str(tmp_path / 'control')
    path = str(tmp_path / 'control.pth')
    torch.save(dict(meta=_RunsShell(f'touch {marker}')), path)
    rc, out = run([sys.executable, '-c',
                   f'import torch; torch.load({path!r}, weights_only=False)'])
    assert rc == 0, out
    assert osp.exists(marker)


def test_import_oneshot_leaves_mmengine_loading_alone():
    import oneshot  # noqa: F401
    from mmengine.runner.checkpoint import CheckpointLoader
    loader = CheckpointLoader._schemes['']
    assert loader.__module__ == 'mmengine.runner.checkpoint', loader


@pytest.mark.parametrize('kind', ['shell', 'exec'])
def test_loader_refuses_code_and_names_the_file(env, kind):
    with pytest.raises(UntrustedCheckpointError) as err:
        load_checkpoint_file(env['evil'][kind])
    msg = str(err.value)
    assert env['evil'][kind] in msg
    assert '--trust-checkpoint' in msg and 'publish_model.py' in msg
    assert_no_marker(env)


def test_inferencer_refuses_crafted_pickle(env):
    with pytest.raises(UntrustedCheckpointError, match='evil_shell.pth'):
        OneShotInferencer(env['cfg'], env['evil']['shell'], device='cpu')
    assert_no_marker(env)


def test_demo_refuses_crafted_pickle(env):
    val = osp.join(env['root'], 'val')
    rc, out = run([
        sys.executable, 'tools/demo.py', val, '--query',
        osp.join(val, '000001.png'), '--config', env['cfg_path'],
        '--checkpoint', env['evil']['exec'], '--out',
        str(env['tmp'] / 'demo'), '--device', 'cpu'])
    assert rc != 0
    assert 'evil_exec.pth' in out and '--trust-checkpoint' in out, out[-3000:]
    assert 'Traceback' not in out
    assert_no_marker(env)
    assert not osp.exists(env['tmp'] / 'demo' / 'detections.json')


def test_test_tool_refuses_crafted_pickle(env):
    rc, out = run([
        sys.executable, 'tools/test.py', QUICKSTART_CFG,
        env['evil']['shell'], '--runs', '1', '--work-dir',
        str(env['tmp'] / 'test_evil'), '--cfg-options',
        *cli_options(env['root'])])
    assert rc != 0
    assert 'evil_shell.pth' in out and 'weights-only' in out, out[-3000:]
    assert_no_marker(env)
    assert not glob.glob(str(env['tmp'] / 'test_evil' / '**' /
                             'oneshot_runs.json'), recursive=True)


def test_load_from_refuses_crafted_pickle(env):
    rc, out = run([
        sys.executable, 'tools/train.py', QUICKSTART_CFG, '--work-dir',
        str(env['tmp'] / 'train_evil'), '--cfg-options',
        f'load_from={env["evil"]["exec"]}', *cli_options(env['root'])])
    assert rc != 0
    assert 'evil_exec.pth' in out and 'trust_checkpoint' in out, out[-3000:]
    assert_no_marker(env)
    assert not glob.glob(str(env['tmp'] / 'train_evil' / '*.pth'))


def test_trust_opt_in_is_a_real_full_pickle(env, tmp_path):
    """The opt-in does what its name says (and only it): here it runs the
    payload, into a marker of its own."""
    marker = str(tmp_path / 'trusted')
    path = str(tmp_path / 'trusted.pth')
    state = load_checkpoint_file(env['own'])['state_dict']
    torch.save(dict(state_dict=state,
                    meta=dict(x=_RunsShell(f'touch {marker}'))), path)
    OneShotInferencer(env['cfg'], path, device='cpu', trust_checkpoint=True)
    assert osp.exists(marker)


def test_own_training_checkpoint_loads_without_opt_in(env):
    ckpt = load_checkpoint_file(env['own'])
    assert {'state_dict', 'meta', 'message_hub', 'optimizer'} <= set(ckpt)
    inferencer = OneShotInferencer(env['cfg'], env['own'], device='cpu')
    assert inferencer.dataset_meta['classes']


def test_resume_of_a_training_checkpoint(env):
    work = str(env['tmp'] / 'resumed')
    opts = cli_options(env['root'], iters=4)
    rc, out = run([sys.executable, 'tools/train.py', QUICKSTART_CFG,
                   '--work-dir', work, '--resume', env['own'],
                   '--cfg-options', *opts])
    assert rc == 0, out[-3000:]
    assert 'resumed epoch: 0, iter: 2' in out
    assert 'Iter(train) [3/4]' in out and 'Iter(train) [1/4]' not in out
    assert osp.isfile(osp.join(work, 'iter_4.pth'))


def test_auto_resume_skips_an_unreadable_newest_checkpoint(env, tmp_path):
    work = str(tmp_path / 'work')
    os.makedirs(work)
    good = osp.join(work, 'iter_2.pth')
    with open(env['own'], 'rb') as f:
        data = f.read()
    with open(good, 'wb') as f:
        f.write(data)
    with open(osp.join(work, 'iter_4.pth'), 'wb') as f:
        f.write(data[:len(data) // 3])  # killed while saving
    with open(osp.join(work, 'last_checkpoint'), 'w') as f:
        f.write(osp.join(work, 'iter_4.pth'))
    cfg = quickstart_cfg(env['root'], work, max_iters=3, ckpt_interval=10)
    cfg.resume = True
    cfg.load_from = None
    runner = OneShotRunner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 3
    log = open(glob.glob(osp.join(work, '*', '*.log'))[0]).read()
    assert 'iter_4.pth' in log and 'cannot be read' in log
    assert f'latest readable checkpoint {good}' in log


def test_checkpoint_of_another_config_names_both_files(env):
    rc, out = run([
        sys.executable, 'tools/test.py', QUICKSTART_CFG, env['other'],
        '--runs', '1', '--work-dir', str(env['tmp'] / 'test_other'),
        '--cfg-options', *cli_options(env['root'])])
    assert rc != 0
    assert 'cat_model.pth' in out and 'does not match the config' in out
    assert osp.basename(QUICKSTART_CFG) in out
    assert 'matcher.' in out  # the first differing parameters
    assert not glob.glob(str(env['tmp'] / 'test_other' / '**' /
                             'oneshot_runs.json'), recursive=True)


def test_load_from_of_another_config_names_both_files(env, tmp_path):
    cfg = quickstart_cfg(env['root'], str(tmp_path / 'w'), max_iters=2)
    cfg.load_from = env['other']
    runner = OneShotRunner.from_cfg(cfg)
    with pytest.raises(CheckpointMismatchError) as err:
        runner.train()
    msg = str(err.value)
    assert 'cat_model.pth' in msg
    assert 'siamese-faster-rcnn_r18-tiny_synthetic.py' in msg
    assert 'parameters missing in the checkpoint' in msg


@pytest.mark.parametrize('kind', ['empty', 'truncated'])
def test_unreadable_checkpoint_names_the_file(env, tmp_path, kind):
    path = str(tmp_path / f'{kind}.pth')
    with open(env['own'], 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(b'' if kind == 'empty' else data[:len(data) // 2])
    with pytest.raises(CheckpointError, match=f'{kind}.pth'):
        OneShotInferencer(env['cfg'], path, device='cpu')
    if kind == 'empty':
        rc, out = run([
            sys.executable, 'tools/test.py', QUICKSTART_CFG, path, '--runs',
            '1', '--work-dir', str(tmp_path / 'test'), '--cfg-options',
            *cli_options(env['root'])])
        assert rc != 0
        assert f"Checkpoint '{path}' is an empty file" in out, out[-3000:]


def test_publish_model(env, tmp_path):
    out = str(tmp_path / 'pub' / 'quickstart.pth')
    rc, log = run([sys.executable, 'tools/model_converters/publish_model.py',
                   env['own'], out])
    assert rc == 0, log
    (final, ) = glob.glob(str(tmp_path / 'pub' / 'quickstart-*.pth'))
    with open(final, 'rb') as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    assert final == str(tmp_path / 'pub' / f'quickstart-{sha[:8]}.pth')
    # No allow-list needed: plain weights-only loading.
    published = torch.load(final, map_location='cpu', weights_only=True)
    assert set(published) == {'state_dict', 'meta'}
    assert published['meta']['dataset_meta']['classes']
    assert 'message_hub' in log and 'optimizer' in log  # reported dropped
    own = load_checkpoint_file(env['own'])['state_dict']
    assert set(published['state_dict']) == set(own)
    for k, v in own.items():
        assert torch.equal(published['state_dict'][k], v), k
    OneShotInferencer(env['cfg'], final, device='cpu')
    # Deterministic: publishing again gives the same file name.
    spec = importlib.util.spec_from_file_location(
        'publish_model',
        osp.join(REPO, 'tools/model_converters/publish_model.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    again, _ = module.publish(env['own'],
                              str(tmp_path / 'again' / 'quickstart.pth'))
    assert osp.basename(again) == osp.basename(final)


def test_publish_model_refuses_crafted_pickle(env, tmp_path):
    rc, log = run([sys.executable, 'tools/model_converters/publish_model.py',
                   env['evil']['shell'], str(tmp_path / 'x.pth')])
    assert rc != 0 and 'evil_shell.pth' in log
    assert not glob.glob(str(tmp_path / 'x*.pth'))
    assert_no_marker(env)

"""Evaluate a one-shot detector over R seeded query draws.

    python tools/test.py CONFIG CHECKPOINT [--runs 5] [--work-dir DIR]
        [--out results.pkl] [--show-dir DIR] [--trust-checkpoint]
        [--cfg-options k=v ...] [--launcher pytorch]

The checkpoint is read weights-only (a run's own mmengine checkpoints and
published ones load; a file holding other pickled objects is refused unless
``--trust-checkpoint``) and must fit the config exactly, else an error names
both files (docs/checkpoints.md).

`test_cfg = dict(type='OneShotTestLoop', runs=R)` (set in
configs/_base_/default_runtime.py) runs the test set once per query draw and
reports every run plus mean and std; `--runs` overrides R. `--out
preds.pkl` keeps the raw predictions of every run, one file per run:
preds_run0.pkl ... preds_run{R-1}.pkl (mmdet's DumpDetResults format).
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402

import oneshot  # noqa: E402,F401
from oneshot.engine import build_runner  # noqa: E402
from oneshot.utils import (CheckpointError, resolve_work_dir,  # noqa: E402
                           setup_cpu_distributed)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Test (and evaluate) a one-shot detector')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--runs', type=int,
        help='number of seeded query draws (overrides test_cfg.runs)')
    parser.add_argument(
        '--work-dir', help='the dir to save logs and the per-run JSON')
    parser.add_argument(
        '--out', type=str,
        help='dump the raw predictions of every episode to pickle files, '
        'one per query draw: --out preds.pkl writes preds_run0.pkl, '
        'preds_run1.pkl, ... (also preds_run0.pkl for --runs 1)')
    parser.add_argument(
        '--show-dir', help='save images with detections and the query '
        'thumbnail into this dir (relative to the work dir\'s timestamp dir)')
    parser.add_argument(
        '--trust-checkpoint', action='store_true',
        help='allow a checkpoint that is not weights-only to be unpickled '
        'fully (it can run code: only for files you wrote yourself)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, e.g. test_dataloader.batch_size=8')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main() -> None:
    args = parse_args()
    for path, what in ((args.config, 'Config'), (args.checkpoint,
                                                 'Checkpoint')):
        if not osp.isfile(path):
            raise FileNotFoundError(f'{what} file {path!r} not found.')
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    cfg.work_dir = resolve_work_dir(cfg, args.config, args.work_dir)
    if args.trust_checkpoint:
        cfg.trust_checkpoint = True
    if args.launcher == 'pytorch' and not torch.cuda.is_available():
        setup_cpu_distributed(cfg)  # gloo; mmengine assumes CUDA
    cfg.load_from = args.checkpoint
    if args.runs is not None:
        if args.runs < 1:
            raise ValueError(f'--runs must be >= 1, got {args.runs}')
        cfg.test_cfg.runs = args.runs

    if args.show_dir:
        vis_hook = cfg.default_hooks.get('visualization', None)
        if vis_hook is None:
            raise RuntimeError(
                '--show-dir needs default_hooks.visualization '
                '(mmdet\'s DetVisualizationHook) in the config.')
        vis_hook.draw = True
        vis_hook.test_out_dir = args.show_dir

    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--out must end with .pkl, got {args.out!r}')
        cfg.test_evaluator = [cfg.test_evaluator] if isinstance(
            cfg.test_evaluator, dict) else list(cfg.test_evaluator)
        cfg.test_evaluator.append(
            dict(type='DumpOneShotResults', out_file_path=args.out))

    runner = build_runner(cfg)
    try:
        runner.test()
    except CheckpointError as e:  # names the files: no traceback needed
        raise SystemExit(f'tools/test.py: {e}') from e


if __name__ == '__main__':
    main()

"""Train a one-shot detector.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--auto-scale-lr] [--trust-checkpoint] [--cfg-options k=v ...]
        [--launcher pytorch]

The flags are mmdet's (`mmdet/tools/train.py`); distributed training goes
through `tools/dist_train.sh` (torchrun), clusters through
`tools/slurm_train.sh`. `load_from` and `--resume` read checkpoints safely
and strictly (oneshot/engine/runner.py, docs/checkpoints.md).
"""
import argparse
import os
import os.path as osp
import sys

# Run from a clone without `pip install -e .` as well.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402

import oneshot  # noqa: E402,F401  (registers the modules)
from oneshot.engine import build_runner  # noqa: E402
from oneshot.utils import (CheckpointError, resolve_work_dir,  # noqa: E402
                           setup_cpu_distributed)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a one-shot detector')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--amp', action='store_true',
        help='enable automatic-mixed-precision training')
    parser.add_argument(
        '--auto-scale-lr', action='store_true',
        help='scale the learning rate by (GPUs x images per GPU) / '
        'auto_scale_lr.base_batch_size')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from the given checkpoint; without a value, resume from '
        'the latest checkpoint in the work dir')
    parser.add_argument(
        '--trust-checkpoint', action='store_true',
        help='allow load_from to unpickle a checkpoint fully (it can run '
        'code: only for files you wrote yourself); by default checkpoints '
        'are read weights-only. --resume trusts the run\'s own file anyway')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, e.g. '
        'train_dataloader.batch_size=4 optim_wrapper.optimizer.lr=0.01')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none', help='job launcher')
    # torchrun sets LOCAL_RANK; torch.distributed.launch passes --local-rank
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main() -> None:
    args = parse_args()
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'Config file {args.config!r} not found.')
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    cfg.work_dir = resolve_work_dir(cfg, args.config, args.work_dir)
    if args.trust_checkpoint:
        cfg.trust_checkpoint = True
    if args.launcher == 'pytorch' and not torch.cuda.is_available():
        setup_cpu_distributed(cfg)  # gloo; mmengine assumes CUDA

    if args.amp:
        optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if optim_wrapper == 'AmpOptimWrapper':
            print('AMP training is already enabled in the config.')
        else:
            assert optim_wrapper == 'OptimWrapper', (
                '--amp works with optim_wrapper.type="OptimWrapper", got '
                f'{optim_wrapper!r}')
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'

    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or \
                'base_batch_size' not in cfg.auto_scale_lr:
            raise RuntimeError(
                '--auto-scale-lr needs `auto_scale_lr = dict(enable=False, '
                'base_batch_size=16)` in the config.')
        cfg.auto_scale_lr.enable = True

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    runner = build_runner(cfg)
    try:
        runner.train()
    except CheckpointError as e:  # names the files: no traceback needed
        raise SystemExit(f'tools/train.py: {e}') from e


if __name__ == '__main__':
    main()

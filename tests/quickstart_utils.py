"""Helpers for tests that run the quickstart config on a small synthetic
dataset generated into a temporary folder (imported by test modules; pytest
puts this folder on sys.path)."""
import os.path as osp
from typing import Dict, List

from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
QUICKSTART_CFG = osp.join(
    REPO, 'configs/quickstart/siamese-faster-rcnn_r18-tiny_synthetic.py')


def make_synthetic(out_dir: str, num_train: int = 24, num_val: int = 8,
                   seed: int = 0) -> str:
    """Generate a small synthetic one-shot dataset; returns its root."""
    from oneshot.datasets.synthetic import generate_synthetic_dataset
    generate_synthetic_dataset(
        out_dir, num_train=num_train, num_val=num_val, seed=seed)
    return out_dir


def data_overrides(data_root: str) -> Dict[str, object]:
    """``--cfg-options`` style overrides pointing the quickstart config at
    ``data_root`` with in-process data loading (fast, deterministic)."""
    root = data_root.rstrip('/') + '/'
    opts: Dict[str, object] = {}
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        opts[f'{loader}.dataset.data_root'] = root
        opts[f'{loader}.num_workers'] = 0
        opts[f'{loader}.persistent_workers'] = False
    return opts


def quickstart_cfg(data_root: str, work_dir: str, max_iters: int = 4,
                   ckpt_interval: int = 2) -> Config:
    """The quickstart config shortened to ``max_iters`` iterations."""
    cfg = Config.fromfile(QUICKSTART_CFG)
    cfg.merge_from_dict(data_overrides(data_root))
    cfg.merge_from_dict({
        'work_dir': work_dir,
        'train_cfg.max_iters': max_iters,
        'train_cfg.val_interval': 10**6,
        'train_dataloader.batch_size': 2,
        'default_hooks.checkpoint.interval': ckpt_interval,
        'default_hooks.checkpoint.max_keep_ckpts': -1,
        'default_hooks.logger.interval': 1,
    })
    # No validation at the end of these short runs.
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.param_scheduler[1].milestones = [max_iters // 2]
    cfg.param_scheduler[1].end = max_iters
    return cfg


def as_cli_options(opts: Dict[str, object]) -> List[str]:
    """``{'a.b': 1}`` -> ``['a.b=1']`` for ``--cfg-options``."""
    return [f'{k}={v}' for k, v in opts.items()]


def random_checkpoint(cfg: Config, path: str, seed: int = 0) -> str:
    """Save a model of ``cfg`` with initial weights drawn under ``seed``
    (scores are arbitrary but deterministic) as an mmengine-style
    checkpoint at ``path``; returns ``path``."""
    import torch
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    model.init_weights()
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), path)
    return path


def random_model_on_synthetic(tmp) -> tuple:
    """``(data root, config, checkpoint)``: 2 train / 4 val synthetic
    images (seed 3) under ``tmp``, the quickstart config pointing at them
    and a random-weight checkpoint (:func:`random_checkpoint`)."""
    from oneshot.datasets.synthetic import generate_synthetic_dataset
    root = str(tmp / 'data')
    generate_synthetic_dataset(root, num_train=2, num_val=4, seed=3)
    cfg = Config.fromfile(QUICKSTART_CFG)
    cfg.merge_from_dict(data_overrides(root))
    return root, cfg, random_checkpoint(cfg, str(tmp / 'model.pth'))

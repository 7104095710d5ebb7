"""Pre-train a config's backbone on crops of its seen classes.

    python tools/pretrain_backbone.py CONFIG --out BACKBONE.pth \
        [--iters 2000] [--batch-size 64] [--lr 2e-3] [--seed 0] \
        [--cosine-scale S] [--supcon-weight W [--per-class K]] \
        [--cfg-options k=v ...]

The crops are the query candidates of the config's training dataset (its
seen classes only, never the unseen ones), cropped and resized like its
queries. The output is a plain backbone state dict; a config starts from it
with ``model.backbone.init_cfg=dict(type='Pretrained', checkpoint=OUT)``
(see configs/quickstart/siamese-faster-rcnn_r18-tiny_glyphs-pretrained.py).
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402

from oneshot.apis.backbone_pretrain import pretrain_backbone  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Pre-train a backbone on seen-class crops')
    parser.add_argument('config', help='one-shot detector config')
    parser.add_argument('--out', required=True, help='output .pth path')
    parser.add_argument('--iters', type=int, default=2000)
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--lr', type=float, default=2e-3)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--cosine-scale', type=float, default=0.0,
        help='> 0: classify with scale x cosine(feature, class weight) '
        'instead of a linear layer (default 0: linear; the README ablation '
        'measured 20 worse on unseen classes)')
    parser.add_argument(
        '--supcon-weight', type=float, default=0.0,
        help='> 0: add this weight x a supervised contrastive loss on a '
        'projection of the pooled features (batches of P classes x '
        '--per-class crops; default 0: cross-entropy only; the README '
        'measured weight 1 worse on both of its data sets)')
    parser.add_argument('--supcon-temperature', type=float, default=0.1)
    parser.add_argument('--per-class', type=int, default=4,
                        help='crops per class in a batch with --supcon-weight')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings of the config, as in tools/train.py')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.iters < 1 or args.batch_size < 1:
        raise SystemExit('--iters and --batch-size must be >= 1')
    torch.set_num_threads(max(1, torch.get_num_threads()))
    result = pretrain_backbone(cfg, args.out, iters=args.iters,
                               batch_size=args.batch_size, lr=args.lr,
                               seed=args.seed,
                               cosine_scale=args.cosine_scale,
                               supcon_weight=args.supcon_weight,
                               supcon_temperature=args.supcon_temperature,
                               per_class=args.per_class)
    print('[pretrain] ' + json.dumps(
        {k: round(v, 4) if isinstance(v, float) else v
         for k, v in result.items()}))
    print(f'[pretrain] backbone saved to {args.out}')


if __name__ == '__main__':
    main()

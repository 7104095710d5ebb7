"""Draw a few test episodes of a trained one-shot detector: each target image
with its detections, the ground truth of the episode class and the query
in a column beside it, tiled into one PNG.

    python tools/visualize_episodes.py CONFIG CHECKPOINT --out result.png \
        [--num 8] [--ncols 4] [--score-thr 0.3] [--run 0] [--device cpu] \
        [--verify-thr T]

Episodes are taken one per class (in class order) from the config's test set,
so the picture shows as many different query classes as possible; targets
that hold the query's class come first (a negative episode, whose target
lacks the class, is drawn only for a class without positive ones, and its
title says so). ``--verify-thr T`` draws only the detections that pass query
verification at T (oneshot/apis/verification.py; the title says so); T is a
number or the JSON of ``tools/analysis/calibrate_verification.py --out``.
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import cv2  # noqa: E402
import mmcv  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmdet.registry import DATASETS, MODELS  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.dataset import pseudo_collate  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

import oneshot  # noqa: E402,F401
from oneshot.apis import (OneShotInferencer, Query, pooled_embedding,  # noqa: E402,E501
                          read_verify_thr)
from oneshot.utils import load_model_weights  # noqa: E402
from oneshot.visualization import draw_oneshot_result, make_result_grid  # noqa: E402,E501


def pick_episodes(dataset, num: int) -> list:
    """Indices of up to ``num`` test episodes of as many different classes
    as possible, spread evenly over the class list."""
    by_class: dict = {}
    negatives: dict = {}
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        # Negative episodes (a target without the class, the test set's
        # num_negatives) only where a class has no positive one: the
        # picture is there to show the query's class being found.
        group = negatives if info.get('negative') else by_class
        group.setdefault(info['episode_label'], []).append(i)
    for label, idxs in negatives.items():
        by_class.setdefault(label, []).extend(idxs)
    labels = sorted(by_class)
    # +1: class lists are often grouped (colour-major), a plain stride would
    # keep hitting the same group.
    step = max(1, len(labels) // max(1, num)) + 1
    order = labels[::step] + [lb for lb in labels if lb not in labels[::step]]
    picks, rank = [], 0
    while len(picks) < num and any(rank < len(v) for v in by_class.values()):
        for label in order:
            if rank < len(by_class[label]) and len(picks) < num:
                picks.append(by_class[label][rank])
        rank += 1
    return picks


def class_title(metainfo: dict, label: int) -> str:
    """Class name, marked when the class is unseen in training."""
    name = metainfo['classes'][label]
    unseen = name in set(metainfo.get('unseen_classes', ()))
    return f'{name} (unseen)' if unseen else name


def query_thumbnail(query: torch.Tensor) -> np.ndarray:
    """(3, S, S) uint8 tensor, BGR as loaded -> (S, S, 3) uint8 array."""
    return np.ascontiguousarray(query.permute(1, 2, 0).cpu().numpy())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--out', required=True, help='output PNG path')
    parser.add_argument('--num', type=int, default=8)
    parser.add_argument('--ncols', type=int, default=4)
    parser.add_argument('--score-thr', type=float, default=0.3)
    parser.add_argument('--run', type=int, default=0, help='query draw')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--verify-thr', default=None,
                        help='draw only detections whose box, encoded like '
                        'a query, has a cosine similarity >= this to the '
                        'query: a number or the JSON of '
                        'tools/analysis/calibrate_verification.py --out')
    parser.add_argument('--trust-checkpoint', action='store_true',
                        help='allow a checkpoint that is not weights-only '
                        'to be unpickled fully (only for your own files)')
    args = parser.parse_args()
    if args.verify_thr is not None:
        try:
            args.verify_thr = read_verify_thr(args.verify_thr)
        except ValueError as err:
            parser.error(f'--verify-thr: {err}')

    cfg = Config.fromfile(args.config)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    dataset.set_run(args.run)
    verifier = None
    if args.verify_thr is not None:
        # Its model (same loader) also runs the episodes.
        verifier = OneShotInferencer(cfg, args.checkpoint, device=args.device,
                                     trust_checkpoint=args.trust_checkpoint)
        model = verifier.model
    else:
        # The project's safe, strict loader (mmdet's init_detector would go
        # through mmengine's loader): docs/checkpoints.md.
        model = MODELS.build(cfg.model)
        load_model_weights(model, args.checkpoint, config=args.config,
                           trust=args.trust_checkpoint)
        model.to(args.device).eval()
    model.cfg = cfg
    tiles = []
    for idx in pick_episodes(dataset, args.num):
        data = dataset[idx]
        with torch.no_grad():
            pred = model.test_step(pseudo_collate([data]))[0]
        info = dataset.get_data_info(idx)
        target = mmcv.imread(info['img_path'], channel_order='bgr')
        gt = np.array([i['bbox'] for i in info['instances']
                       if not i.get('ignore_flag', 0)], dtype=np.float32)
        inst = pred.pred_instances
        bboxes = inst.bboxes.cpu().numpy()
        scores = inst.scores.cpu().numpy()
        title = class_title(dataset.metainfo, info['episode_label'])
        if verifier is not None:
            shots = [Query(q['img_path'], q['bbox'])
                     for q in info['query_infos']]
            emb = pooled_embedding(verifier.encode([shots]).feats[0])
            shown = scores >= args.score_thr
            keep = np.zeros(len(scores), bool)
            keep[shown] = verifier.box_similarities(
                target, bboxes[shown], emb) >= args.verify_thr
            bboxes, scores = bboxes[keep], scores[keep]
            title += f' (verified {args.verify_thr:g})'
        tiles.append(draw_oneshot_result(
            target, [query_thumbnail(q) for q in data['inputs']['query']],
            bboxes, scores, gt_bboxes=gt.reshape(-1, 4),
            class_name=title
            + (' - not in this target' if info.get('negative') else ''),
            score_thr=args.score_thr))
    if not tiles:
        raise RuntimeError(f'The test set of {args.config} has no episodes.')
    grid = make_result_grid(tiles, args.ncols)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    cv2.imwrite(args.out, grid)
    print(f'saved {len(tiles)} episodes to {args.out}')


if __name__ == '__main__':
    main()

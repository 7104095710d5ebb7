"""Speed of the cached inference path against per-pair inference.

    python tools/benchmark_inferencer.py CONFIG [--checkpoint CKPT] \
        --targets 100 --queries 3 [--size 160 160]

Both paths read and preprocess the same T target images and Q queries
(crops of the targets) with :class:`OneShotInferencer`:

- cached: ``OneShotInferencer.__call__``: Q query backbone passes, T target
  passes, then matcher + heads per pair (``batch_size`` queries at a time);
- per pair: ``model.predict`` on one episode at a time, as a loop over
  pairs with the dataset-style detector call would do: target and query
  both go through the backbone for every pair (T*Q of each).

The detections of both paths are compared (they must agree) and the wall
times, seconds per pair and the speed-up are printed. Without
``--checkpoint`` the weights are random (speed does not depend on them).
Synthetic targets are generated when ``--images`` is not given.
"""
import argparse
import os.path as osp
import sys
import tempfile
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from mmengine.dataset import pseudo_collate  # noqa: E402

from oneshot.apis import (OneShotInferencer, Query, list_images,  # noqa: E402
                          read_image, stack_patches)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--checkpoint', default=None)
    parser.add_argument('--images', default=None,
                        help='Folder of target images (default: generate '
                        'synthetic ones).')
    parser.add_argument('--targets', type=int, default=100)
    parser.add_argument('--queries', type=int, default=3)
    parser.add_argument('--size', type=int, nargs=2, default=(160, 160),
                        metavar=('W', 'H'), help='Synthetic image size.')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--device', default=None)
    parser.add_argument('--threads', type=int, default=None,
                        help='torch.set_num_threads (default: torch\'s).')
    return parser.parse_args()


def synthetic_targets(folder: str, num: int, size) -> list:
    """``num`` random-clutter images with a few coloured rectangles."""
    import mmcv
    rng = np.random.default_rng(0)
    w, h = size
    paths = []
    for i in range(num):
        img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        for _ in range(3):
            x1, y1 = rng.integers(0, w // 2), rng.integers(0, h // 2)
            img[y1:y1 + h // 4, x1:x1 + w // 4] = rng.integers(0, 255, 3)
        path = osp.join(folder, f'{i:06d}.png')
        mmcv.imwrite(img, path)
        paths.append(path)
    return paths


@torch.no_grad()
def per_pair(inferencer: OneShotInferencer, targets, encoded) -> list:
    """One full ``model.predict`` per (target, query) pair: the target
    read and preprocessed and both backbones run for every pair, with the
    inferencer's own reading and preprocessing (same inputs)."""
    model = inferencer.model
    out = []
    for t_index, path in enumerate(targets):
        for qs in encoded.sets:
            img = read_image(path, 'Target')
            packed = inferencer.pipeline.prepare_target(img, path, t_index)
            packed['inputs'] = dict(img=packed['inputs'],
                                    query=stack_patches(qs.patches))
            data = model.data_preprocessor(pseudo_collate([packed]))
            (pred, ) = model.predict(data['inputs'], data['data_samples'])
            out.append(pred.pred_instances.scores.cpu().numpy())
    return out


def main():
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    tmp = tempfile.TemporaryDirectory()
    if args.images:
        targets = list_images(args.images)[:args.targets]
    else:
        targets = synthetic_targets(tmp.name, args.targets, args.size)
    inferencer = OneShotInferencer(args.config, args.checkpoint,
                                   device=args.device,
                                   batch_size=args.batch_size)
    import mmcv
    queries = []
    for i in range(args.queries):
        h, w = mmcv.imread(targets[i % len(targets)]).shape[:2]
        queries.append(Query(targets[i % len(targets)],
                             [w * 0.1 * i, h * 0.1 * i, w * 0.5, h * 0.6]))
    # Warm-up (allocator, first-call overheads) on one target.
    inferencer(targets[0], queries)

    start = time.perf_counter()
    encoded = inferencer.encode(queries)
    cached = inferencer(targets, encoded)
    t_cached = time.perf_counter() - start

    start = time.perf_counter()
    scores = per_pair(inferencer, targets, encoded)
    t_pair = time.perf_counter() - start

    flat = [d['scores'] for r in cached for d in r['detections']]
    worst = max(float(np.abs(np.sort(a)[::-1] - np.sort(b)[::-1]).max())
                if len(a) else 0.0 for a, b in zip(flat, scores))
    pairs = len(targets) * len(queries)
    print(f'config: {args.config}')
    print(f'{len(targets)} targets x {len(queries)} queries = {pairs} pairs, '
          f'device {inferencer.device}, threads {torch.get_num_threads()}')
    print(f'cached   : {t_cached:8.2f} s  ({t_cached / pairs * 1000:7.1f} '
          f'ms/pair)  backbone passes: {len(targets)} targets + '
          f'{len(queries)} queries')
    print(f'per pair : {t_pair:8.2f} s  ({t_pair / pairs * 1000:7.1f} '
          f'ms/pair)  backbone passes: {pairs} targets + {pairs} queries')
    print(f'speed-up : {t_pair / t_cached:.2f}x   max |score difference| '
          f'{worst:.2e}')


if __name__ == '__main__':
    main()

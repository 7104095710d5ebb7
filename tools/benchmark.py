"""Time `predict` of one-shot detectors (and plain mmdet detectors) on one
target image of a fixed size, with random weights (speed does not depend on
the weights: the RPN keeps a fixed number of proposals).

    python tools/benchmark.py configs/cat_r50.py configs/siamese-faster-rcnn_r50.py \
        mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py \
        --size 1000 600 --queries 1 --repeat 5

For a one-shot config, `--queries N` runs one target image with N episodes
(N different queries) in one batch, which is how the test loop feeds the
detector; the time is reported per image and per episode.
"""
import argparse
import os.path as osp
import sys
import time
from typing import List

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402
from mmdet.registry import MODELS  # noqa: E402
from mmdet.structures import DetDataSample  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.hub import get_config  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

import oneshot  # noqa: E402,F401


def is_oneshot(cfg: Config) -> bool:
    """A config is one-shot when its data preprocessor handles queries."""
    return cfg.model.data_preprocessor.type == 'OneShotDataPreprocessor'


def query_size(cfg: Config, default: int = 128) -> int:
    """The query side length of the config's test pipeline."""
    pipeline = cfg.get('test_pipeline', None) or \
        cfg.test_dataloader.dataset.get('pipeline', [])
    for t in pipeline:
        if t['type'] == 'ResizeQueryPatches':
            return int(t['size'])
    return default


def make_batch(cfg: Config, width: int, height: int, queries: int,
               shots: int) -> dict:
    """A collated batch as the test dataloader would give it: uint8
    images (random pixels), one target image repeated for every episode."""
    g = torch.Generator().manual_seed(0)
    img = torch.randint(0, 256, (3, height, width), generator=g,
                        dtype=torch.uint8)
    n = queries if is_oneshot(cfg) else 1
    samples: List[DetDataSample] = []
    for i in range(n):
        s = DetDataSample()
        s.set_metainfo(dict(
            img_id=0, img_shape=(height, width), ori_shape=(height, width),
            scale_factor=(1.0, 1.0), episode_label=0, episode_cat_id=1,
            query_ann_ids=[i * shots + k for k in range(shots)]))
        samples.append(s)
    if not is_oneshot(cfg):
        return dict(inputs=[img], data_samples=samples)
    size = query_size(cfg)
    qs = [torch.randint(0, 256, (shots, 3, size, size), generator=g,
                        dtype=torch.uint8) for _ in range(n)]
    return dict(inputs=dict(img=[img] * n, query=qs), data_samples=samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('configs', nargs='+')
    parser.add_argument('--size', nargs=2, type=int, default=[1000, 600],
                        metavar=('W', 'H'))
    parser.add_argument('--queries', type=int, default=1,
                        help='episodes (different queries) per target image')
    parser.add_argument('--shots', type=int, default=1)
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--threads', type=int, default=0,
                        help='torch CPU threads (0: torch default)')
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    rows = []
    for path in args.configs:
        # 'mmdet::...' names a config shipped inside the mmdet package.
        cfg = get_config(path) if '::' in path else Config.fromfile(path)
        init_default_scope(cfg.get('default_scope', 'mmdet'))
        cfg.model.pop('init_cfg', None)
        if 'backbone' in cfg.model:
            cfg.model.backbone.init_cfg = None  # no downloads, random weights
        model = MODELS.build(cfg.model).to(args.device).eval()
        data = make_batch(cfg, *args.size, args.queries, args.shots)
        with torch.no_grad():
            for _ in range(args.warmup):
                model.test_step(data)
            if args.device.startswith('cuda'):
                torch.cuda.synchronize()
            times = []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                model.test_step(data)
                if args.device.startswith('cuda'):
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - t0)
        per_img = sorted(times)[len(times) // 2]
        episodes = args.queries if is_oneshot(cfg) else 1
        rows.append((osp.basename(path), per_img, per_img / episodes,
                     episodes))

    w, h = args.size
    print(f'\npredict on one {w}x{h} image, device {args.device}, '
          f'torch threads {torch.get_num_threads()}, median of '
          f'{args.repeat} runs (after {args.warmup} warm-up)')
    print(f'{"config":<60} {"s/image":>9} {"s/episode":>10} {"episodes":>9}')
    for name, t_img, t_ep, n in rows:
        print(f'{name:<60} {t_img:>9.3f} {t_ep:>10.3f} {n:>9d}')


if __name__ == '__main__':
    main()

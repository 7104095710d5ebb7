"""Time `predict` of one-shot detectors (and plain mmdet detectors) on one
target image of a fixed size, with random weights (speed does not depend on
the weights: the RPN keeps a fixed number of proposals).

    python tools/benchmark.py configs/cat_r50.py configs/siamese-faster-rcnn_r50.py \
        mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py \
        --size 1000 600 --queries 1 --repeat 5

For a one-shot config, `--queries N` runs one target image with N episodes
(N different queries) in one batch, which is how the test loop feeds the
detector; the time is reported per image and per episode.

`--stages` adds where the time goes: seconds per image in the backbone
(target and query passes together), neck, matcher, RPN / dense head
(`predict`, post-processing included) and RoI head, and what is left
(pre-processing, K-shot fusion, packing the results).
"""
import argparse
import os.path as osp
import sys
import time
from collections import defaultdict
from typing import Callable, Dict, List

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


# The detector's top-level parts that --stages times, and the method that
# the detector calls on each (a part lacking `predict` is timed on forward).
STAGES = ('backbone', 'neck', 'matcher', 'rpn_head', 'roi_head', 'bbox_head')


def device_sync(device: str) -> Callable[[], None]:
    """What waits for queued kernels before a clock is read on ``device``."""
    return torch.cuda.synchronize if device.startswith('cuda') else \
        (lambda: None)


def add_stage_timers(model: torch.nn.Module, device: str,
                     totals: Dict[str, float]) -> List[str]:
    """Wrap the entry method of each of the model's STAGES so that its
    seconds accumulate into ``totals[stage]``; returns the stages found."""
    found = []
    sync = device_sync(device)

    def timed(name: str, fn: Callable) -> Callable:
        def wrapper(*args, **kwargs):
            sync()
            t0 = time.perf_counter()
            out = fn(*args, **kwargs)
            sync()
            totals[name] += time.perf_counter() - t0
            return out
        return wrapper

    for name in STAGES:
        part = getattr(model, name, None)
        if not isinstance(part, torch.nn.Module):
            continue
        method = 'predict' if hasattr(part, 'predict') else 'forward'
        # An instance attribute shadows the class method: nn.Module.__call__
        # and the detector's `part.predict(...)` both find the wrapper.
        setattr(part, method, timed(name, getattr(part, method)))
        found.append(name)
    return found


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
    parser.add_argument('--stages', action='store_true',
                        help='also report seconds per stage of the model')
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    rows = []
    stage_rows = []
    for path in args.configs:
        # 'mmdet::...' names a config shipped inside the mmdet package.
        cfg = get_config(path) if '::' in path else Config.fromfile(path)
        init_default_scope(cfg.get('default_scope', 'mmdet'))
        cfg.model.pop('init_cfg', None)
        if 'backbone' in cfg.model:
            cfg.model.backbone.init_cfg = None  # no downloads, random weights
        model = MODELS.build(cfg.model).to(args.device).eval()
        data = make_batch(cfg, *args.size, args.queries, args.shots)
        totals: Dict[str, float] = defaultdict(float)
        stages = add_stage_timers(model, args.device, totals) \
            if args.stages else []
        sync = device_sync(args.device)
        with torch.no_grad():
            for _ in range(args.warmup):
                model.test_step(data)
            sync()
            times, per_stage = [], []
            for _ in range(args.repeat):
                totals.clear()
                t0 = time.perf_counter()
                model.test_step(data)
                sync()
                times.append(time.perf_counter() - t0)
                per_stage.append(dict(totals))
        # The run with the median total, so that its stages add up to it.
        order = sorted(range(len(times)), key=times.__getitem__)
        median = order[len(order) // 2]
        per_img = times[median]
        if stages:
            spent = per_stage[median]
            stage_rows.append((osp.basename(path), stages, spent,
                               per_img - sum(spent.values())))
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
    if stage_rows:
        print('\nseconds per image by stage (same median run; backbone = '
              'target + query passes; rest = pre-processing, fusion, '
              'packing)')
        print(f'{"config":<60}' + ''.join(f'{s:>10}' for s in STAGES) +
              f'{"rest":>10}')
        for name, found, spent, rest in stage_rows:
            cells = ''.join(f'{spent.get(s, 0.0):>10.3f}' if s in found
                            else f'{"-":>10}' for s in STAGES)
            print(f'{name:<60}{cells}{rest:>10.3f}')


if __name__ == '__main__':
    main()

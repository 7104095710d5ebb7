"""Resident memory of testing and of the inferencer: does it grow?

    python tools/analysis/benchmark_memory.py CONFIG --data-root DIR \
        [--checkpoint CKPT] [--mode test|inferencer|both] [--runs 5] \
        [--pairs 1000] [--every 250] [--warmup 50] [--threads 1] \
        [--work-dir DIR] [--tolerance-mb 10] [--cfg-options k=v ...]
    python tools/analysis/benchmark_memory.py CONFIG --mode metric \
        [--calls 100] [--every 10] ...

Two measurements, in one process each (``--mode both`` runs them one after
the other in one process, the test first):

- **test**: what ``tools/test.py`` does (``build_runner`` + ``runner.test()``
  with ``test_cfg.runs`` query draws, the config's test dataloader and its
  workers). For every query draw it prints the *peak* resident set size of
  the main process during that draw (the kernel's high-water mark, reset
  through ``/proc/self/clear_refs`` before each draw), the resident size at
  its end, and the dataloader workers alive and their resident size.
- **inferencer**: :class:`OneShotInferencer` called once per (target,
  query) pair, the way a user loops over pairs: target ``i`` is val image
  ``i`` (cycling), its query a box of another val image, so both the
  target and the query are read, preprocessed and encoded in every call.
  The resident size is printed after ``--warmup`` pairs and then every
  ``--every`` pairs, up to ``--pairs``.

A third, ``--mode metric``, looks for where the test's memory goes: one
query draw of the test, whose episode records ``OneShotMetric`` keeps, then
``compute_metrics`` called ``--calls`` times on those same records, the
resident size printed every ``--every`` calls; growth is judged from call
``--every`` on (the first calls fill the allocator's pools). On the
quickstart model (README, "Memory") the resident size rises 12 MiB over
the first 10 calls and then stays within 0.1 MiB for 90 more: what a test
keeps after each of its first draws is the allocator reaching its working
set for the metric's ~10^5 small dicts and lists per call, not a leak.
``PYTHONMALLOC=malloc`` (CPython objects from the C allocator instead of
pymalloc's arenas) is the comparison to run when that is in doubt.

Resident sizes are read from ``/proc/<pid>/status`` (``VmRSS``, ``VmHWM``;
Linux) after ``gc.collect()`` and glibc's ``malloc_trim(0)`` (memory still
in use, not what the allocator keeps cached from the last peak). Without
``--checkpoint`` the model is the config's, randomly initialised with
``--seed`` and saved to ``<work-dir>/random_init.pth``, which goes through
the same strict loading as a trained checkpoint (memory does not depend on
the weights' values; a random model keeps 100 boxes per pair, the most the
heads return). The last line says whether memory grows, by more than
``--tolerance-mb``: the peak of the last query draw above the peaks of all
earlier ones (a peak that grows sets a new high; the allocator's noise
between draws does not), the resident size at the end of a draw from the
second draw to the last (the first allocates the caches), and the
inferencer's resident size from the warm-up to the last pair; the exit
status is 1 when one grows.
"""
import argparse
import gc
import os
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))

import torch  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.hooks import Hook  # noqa: E402

MIB = 1024.0


def parse_status(text: str) -> Dict[str, float]:
    """The memory fields of a ``/proc/<pid>/status`` text in MiB
    (``VmRSS``, ``VmHWM``, ...) and ``PPid`` as a number."""
    out: Dict[str, float] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(':')
        if not sep:
            continue
        fields = value.split()
        if key == 'PPid' and fields:
            out['PPid'] = int(fields[0])
        elif key.startswith('Vm') and len(fields) == 2 and fields[1] == 'kB':
            out[key] = int(fields[0]) / MIB
    return out


def read_status(pid='self') -> Dict[str, float]:
    """:func:`parse_status` of process ``pid``; ``{}`` if it is gone or
    ``/proc`` is not there."""
    try:
        with open(f'/proc/{pid}/status') as f:
            return parse_status(f.read())
    except OSError:
        return {}


def rss_mb() -> float:
    """Resident set size of this process, in MiB."""
    status = read_status()
    if 'VmRSS' in status:
        return status['VmRSS']
    try:
        import psutil
        return psutil.Process().memory_info().rss / MIB / MIB
    except ImportError:
        raise RuntimeError('benchmark_memory.py reads /proc/self/status '
                           '(Linux) or needs psutil installed.')


def peak_mb() -> float:
    """Peak resident set size of this process (since the last
    :func:`reset_peak`), in MiB."""
    status = read_status()
    if 'VmHWM' in status:
        return status['VmHWM']
    import resource  # the lifetime peak; ru_maxrss is in KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / MIB


def reset_peak() -> bool:
    """Reset the kernel's high-water mark of this process (Linux >= 4.0);
    False where that is not possible (the peak is then the lifetime's)."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def release_freed() -> None:
    """``gc.collect()``, then glibc's ``malloc_trim(0)`` where there is one:
    memory already freed goes back to the OS, so the resident size read
    next is what is still in use (a leak stays), not what the allocator
    happens to keep cached from the last peak."""
    gc.collect()
    try:
        import ctypes
        ctypes.CDLL('libc.so.6').malloc_trim(0)
    except (OSError, AttributeError):
        pass


def children_rss(pid: Optional[int] = None) -> List[float]:
    """Resident sizes (MiB) of the live child processes of ``pid`` (this
    process by default): the dataloader workers."""
    pid = os.getpid() if pid is None else pid
    sizes = []
    for name in os.listdir('/proc') if osp.isdir('/proc') else []:
        if name.isdigit():
            status = read_status(name)
            if status.get('PPid') == pid and 'VmRSS' in status:
                sizes.append(status['VmRSS'])
    return sizes


def checkpoints(total: int, every: int, warmup: int) -> List[int]:
    """Pair counts at which to measure: after the warm-up, then every
    ``every`` pairs, and at ``total``."""
    if not 0 <= warmup < total or every < 1:
        raise ValueError(f'need 0 <= warmup ({warmup}) < pairs ({total}) '
                         f'and every ({every}) >= 1')
    points = [warmup] + list(range(every, total + 1, every))
    if points[-1] != total:
        points.append(total)
    return sorted(set(p for p in points if p >= warmup))


def growth(values: Sequence[float]) -> float:
    """Last minus first value (MiB); 0 for fewer than two."""
    return float(values[-1] - values[0]) if len(values) > 1 else 0.0


def new_high(values: Sequence[float]) -> float:
    """How far the last value rises above every earlier one (MiB; <= 0:
    no new high). A peak that grows from run to run sets a new high in the
    last run; the allocator's noise between runs does not."""
    return float(values[-1] - max(values[:-1])) if len(values) > 1 else 0.0


class RunMemoryHook(Hook):
    """Records the memory of every query draw of ``OneShotTestLoop``
    (``before_test_epoch`` / ``after_test_epoch`` run once per draw)."""

    priority = 'LOWEST'

    def __init__(self) -> None:
        self.rows: List[Dict[str, float]] = []

    def before_test_epoch(self, runner) -> None:
        release_freed()
        self.start = rss_mb()
        reset_peak()

    def after_test_epoch(self, runner, metrics=None) -> None:
        peak = peak_mb()
        release_freed()
        workers = children_rss()
        self.rows.append(dict(start=self.start, peak=peak, end=rss_mb(),
                              workers=len(workers),
                              workers_mb=sum(workers)))


def data_overrides(cfg: Config, data_root: str) -> None:
    root = data_root.rstrip('/') + '/'
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if cfg.get(loader) is not None:
            cfg[loader].dataset.data_root = root


def random_checkpoint(cfg: Config, path: str, seed: int) -> str:
    """Save the config's model, randomly initialised with ``seed``."""
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    model.init_weights()
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), path)
    return path


def measure_test(cfg: Config, checkpoint: str, runs: int,
                 work_dir: str) -> List[Dict[str, float]]:
    """``tools/test.py``'s evaluation with :class:`RunMemoryHook`."""
    from oneshot.engine import build_runner
    cfg = cfg.copy()
    cfg.work_dir = work_dir
    cfg.load_from = checkpoint
    cfg.test_cfg.runs = runs
    runner = build_runner(cfg)
    hook = RunMemoryHook()
    runner.register_hook(hook, priority='LOWEST')
    runner.test()
    return hook.rows


def measure_metric(cfg: Config, checkpoint: str, calls: int, every: int,
                   work_dir: str) -> List[Dict[str, float]]:
    """RSS after every ``every`` of ``calls`` calls of the test metric's
    ``compute_metrics`` on the episode records of one query draw (row 0:
    after the draw's own call)."""
    from oneshot.engine import build_runner
    from oneshot.evaluation import OneShotMetric
    cfg = cfg.copy()
    cfg.work_dir = work_dir
    cfg.load_from = checkpoint
    cfg.test_cfg.runs = 1
    runner = build_runner(cfg)
    metric = next((m for m in runner.test_loop.evaluator.metrics
                   if isinstance(m, OneShotMetric)), None)
    if metric is None:
        raise ValueError(f'{cfg.filename}: test_evaluator has no '
                         'OneShotMetric; --mode metric measures it.')
    captured: List[list] = []
    compute = metric.compute_metrics

    def keep(results):
        captured.append(list(results))
        return compute(results)

    metric.compute_metrics = keep
    runner.test()
    metric.compute_metrics = compute
    records = captured[0]
    release_freed()
    rows = [dict(calls=0, rss=rss_mb(), episodes=len(records))]
    for i in range(1, calls + 1):
        compute(records)
        if i % every == 0 or i == calls:
            release_freed()
            rows.append(dict(calls=i, rss=rss_mb(), episodes=len(records)))
            print(f'  {i:5d} calls: RSS {rows[-1]["rss"]:8.1f} MiB',
                  flush=True)
    return rows


def inferencer_pairs(ann_file: str, img_dir: str, num: int) -> list:
    """``num`` (target path, Query) pairs from a COCO json: target ``i`` is
    image ``i % n``, its query the ``i``-th annotation (cycling) of another
    image."""
    import json
    from oneshot.apis import Query
    with open(ann_file) as f:
        coco = json.load(f)
    files = {im['id']: osp.join(img_dir, im['file_name'])
             for im in coco['images']}
    images = sorted(files)
    anns = [a for a in coco['annotations'] if not a.get('iscrowd', 0)
            and min(a['bbox'][2:]) >= 1]
    if len(images) < 2 or not anns:
        raise ValueError(f'{ann_file}: need 2 images and 1 annotation.')
    pairs = []
    for i in range(num):
        img_id = images[i % len(images)]
        for k in range(len(anns)):
            ann = anns[(i + k) % len(anns)]
            if ann['image_id'] != img_id:
                break
        x, y, w, h = ann['bbox']
        pairs.append((files[img_id],
                      Query(files[ann['image_id']], [x, y, x + w, y + h])))
    return pairs


def measure_inferencer(cfg: Config, checkpoint: str, pairs: list,
                       points: List[int]) -> List[Dict[str, float]]:
    """RSS after each count of ``points`` pairs, one call per pair."""
    from oneshot.apis import OneShotInferencer
    inferencer = OneShotInferencer(cfg, checkpoint, device='cpu')
    rows, boxes = [], 0
    if points[0] == 0:
        release_freed()
        rows.append(dict(pairs=0, rss=rss_mb(), boxes=0))
        reset_peak()
    for i, (target, query) in enumerate(pairs, 1):
        (result, ) = inferencer(target, query)
        boxes += sum(len(d['scores']) for d in result['detections'])
        if i in points:
            release_freed()
            rows.append(dict(pairs=i, rss=rss_mb(), boxes=boxes))
            if i == points[0]:
                reset_peak()  # the peak from here on, not the warm-up's
            print(f'  {i:5d} pairs: RSS {rows[-1]["rss"]:8.1f} MiB',
                  flush=True)
    return rows


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--checkpoint', help='default: a seeded random '
                        'initialisation saved to the work dir')
    parser.add_argument('--data-root', help="the test data's root "
                        '(overrides the config\'s data_root)')
    parser.add_argument('--mode', choices=['test', 'inferencer', 'both',
                                           'metric'], default='both')
    parser.add_argument('--calls', type=int, default=100,
                        help='compute_metrics calls (--mode metric)')
    parser.add_argument('--runs', type=int, default=5,
                        help='query draws of the test')
    parser.add_argument('--pairs', type=int, default=1000,
                        help='(target, query) pairs for the inferencer')
    parser.add_argument('--every', type=int, default=250)
    parser.add_argument('--warmup', type=int, default=50)
    parser.add_argument('--threads', type=int, default=1,
                        help='torch.set_num_threads')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--tolerance-mb', type=float, default=10.0)
    parser.add_argument('--work-dir', default='work_dirs/mem_bench')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(argv)
    if args.runs < 2:
        parser.error('--runs must be >= 2 (growth from run to run)')
    checkpoints(args.pairs, args.every, args.warmup)  # validates
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    import oneshot  # noqa: F401  (registers the modules)
    torch.set_num_threads(args.threads)
    cfg = Config.fromfile(args.config)
    if args.data_root:
        data_overrides(cfg, args.data_root)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    os.makedirs(args.work_dir, exist_ok=True)
    ckpt = args.checkpoint or random_checkpoint(
        cfg, osp.join(args.work_dir, 'random_init.pth'), args.seed)
    print(f'config: {args.config}\ncheckpoint: {ckpt}\n'
          f'torch threads: {torch.get_num_threads()}, start RSS '
          f'{rss_mb():.1f} MiB', flush=True)
    verdicts = []
    if args.mode == 'metric':
        every = min(args.every, args.calls)
        print(f'\nmetric: {args.calls} compute_metrics calls on the '
              'records of one query draw', flush=True)
        rows = measure_metric(cfg, ckpt, args.calls, every, args.work_dir)
        print(f'| calls | RSS (MiB) | vs first (MiB) |\n|---|---|---|')
        for row in rows:
            print(f'| {row["calls"]} | {row["rss"]:.1f} | '
                  f'{row["rss"] - rows[0]["rss"]:+.1f} |')
        print(f'{rows[0]["episodes"]} episode records; PYTHONMALLOC='
              f'{os.environ.get("PYTHONMALLOC", "(default)")}')
        # The first calls fill the allocator's pools (a test calls the
        # metric 7 times per draw); growth is judged after them.
        verdicts.append((f'metric RSS, call {rows[1]["calls"]} to '
                         f'{args.calls}', growth([r['rss'] for r in rows[1:]])))
    if args.mode in ('test', 'both'):
        rows = measure_test(cfg, ckpt, args.runs, args.work_dir)
        print(f'\ntest: {args.runs} query draws, '
              f'{cfg.test_dataloader.num_workers} dataloader workers')
        print('| draw | peak RSS (MiB) | RSS at end (MiB) | workers alive '
              '| workers RSS (MiB) |')
        print('|---|---|---|---|---|')
        for r, row in enumerate(rows):
            print(f'| {r} | {row["peak"]:.1f} | {row["end"]:.1f} | '
                  f'{row["workers"]} | {row["workers_mb"]:.1f} |')
        verdicts.append(('test peak RSS of the last draw above the '
                         'earlier ones', new_high([r['peak'] for r in rows])))
        verdicts.append(('test RSS at the end of a draw, draw 1 to last',
                         growth([row['end'] for row in rows[1:]])))
    if args.mode in ('inferencer', 'both'):
        test = cfg.test_dataloader.dataset
        root = test.get('data_root', '')
        pairs = inferencer_pairs(osp.join(root, test.ann_file),
                                 osp.join(root, test.data_prefix.img),
                                 args.pairs)
        points = checkpoints(args.pairs, args.every, args.warmup)
        print(f'\ninferencer: {args.pairs} (target, query) pairs, one call '
              'each', flush=True)
        rows = measure_inferencer(cfg, ckpt, pairs, points)
        print('| pairs | RSS (MiB) | vs warm-up (MiB) |\n|---|---|---|')
        for row in rows:
            print(f'| {row["pairs"]} | {row["rss"]:.1f} | '
                  f'{row["rss"] - rows[0]["rss"]:+.1f} |')
        print(f'peak RSS after the warm-up {peak_mb():.1f} MiB, '
              f'{rows[-1]["boxes"]} boxes returned')
        verdicts.append((f'inferencer RSS, pair {args.warmup} to '
                         f'{args.pairs}', growth([r['rss'] for r in rows])))
    grows = [(name, g) for name, g in verdicts if g > args.tolerance_mb]
    print('\n' + '; '.join(f'{name}: {g:+.1f} MiB' for name, g in verdicts)
          + (f' -> GROWS (> {args.tolerance_mb} MiB)' if grows else
             f' -> flat (within {args.tolerance_mb} MiB)'))
    return 1 if grows else 0


if __name__ == '__main__':
    sys.exit(main())

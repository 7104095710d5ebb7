"""Where do the confident false positives of a one-shot detector come from?

    python tools/analysis/analyze_errors.py CONFIG CHECKPOINT [--run 0]
        [--score-thr 0.5] [--iou-thr 0.5] [--num-negatives N]
        [--out-dir DIR] [--work-dir DIR] [--top-k 8] [--cfg-options ...]

Runs the test set once, with query draw ``--run``, and sorts every detection
scoring >= ``--score-thr`` into true positive, wrong class (a box on an
object of another class of the target: a matching error), poor box,
background and duplicate (rules and their order:
``oneshot/evaluation/error_analysis.py``). ``--num-negatives N`` adds N
targets without the class per class, whose detections are all false
alarms. Writes ``errors.json`` (see ``analyze_errors``) and
``confusions.png`` (the most confused query classes, with their query and
example detections) to ``--out-dir`` (default ``<work_dir>/errors``) and
prints a summary. Single process only.
"""
import argparse
import json
import os
import os.path as osp
import sys

sys.path.insert(
    0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmengine.config import Config, DictAction  # noqa: E402

import oneshot  # noqa: E402,F401
from oneshot.engine import build_runner  # noqa: E402
from oneshot.evaluation.error_analysis import (  # noqa: E402
    ErrorAnalysisRecorder, analyze_errors, draw_confusions, summary_text)
from oneshot.utils import resolve_work_dir  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Error analysis of a one-shot detector: true '
        'positives, wrong-class, poor-box, background and duplicate '
        'detections, and which classes the queries are taken for')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--run', type=int, default=0,
                        help='query draw to analyse (default 0)')
    parser.add_argument('--score-thr', type=float, default=0.5,
                        help='confidence threshold (default 0.5)')
    parser.add_argument('--iou-thr', type=float, default=0.5,
                        help='IoU of a hit (default 0.5)')
    parser.add_argument(
        '--num-negatives', type=int,
        help='negative targets (without the class) per class, overrides '
        'test_dataloader.dataset.num_negatives')
    parser.add_argument('--top-k', type=int, default=8,
                        help='confusion pairs drawn (default 8)')
    parser.add_argument(
        '--out-dir', help='where errors.json and confusions.png go '
        '(default <work_dir>/errors)')
    parser.add_argument('--work-dir', help='the dir to save logs')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, e.g. test_dataloader.batch_size=8')
    return parser.parse_args(argv)


def prepare_cfg(args: argparse.Namespace) -> Config:
    """The config of one test pass over query draw ``args.run`` with the
    episode records kept.

    ``OneShotTestLoop`` calls ``set_run(r)`` for ``r`` in ``range(runs)``,
    so it can only give draw ``R`` by also testing draws ``0 .. R-1``.
    The tool uses mmengine's plain ``TestLoop`` instead (one pass, no
    ``set_run``) and sets ``test_dataloader.dataset.run = R``, which the
    dataset uses from construction on; the episodes are those of run
    ``R`` of ``tools/test.py``.
    """
    for path, what in ((args.config, 'Config'),
                       (args.checkpoint, 'Checkpoint')):
        if not osp.isfile(path):
            raise FileNotFoundError(f'{what} file {path!r} not found.')
    if args.run < 0:
        raise ValueError(f'--run must be >= 0, got {args.run}')
    if args.num_negatives is not None and args.num_negatives < 0:
        raise ValueError(
            f'--num-negatives must be >= 0, got {args.num_negatives}')
    if not 0 <= args.score_thr <= 1:
        raise ValueError(f'--score-thr must be in [0, 1], got '
                         f'{args.score_thr}')
    if not 0.1 < args.iou_thr < 1:
        raise ValueError(f'--iou-thr must be in (0.1, 1), got '
                         f'{args.iou_thr}')
    cfg = Config.fromfile(args.config)
    cfg.launcher = 'none'
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    cfg.work_dir = resolve_work_dir(cfg, args.config, args.work_dir)
    cfg.load_from = args.checkpoint

    loader = cfg.get('test_dataloader')
    if not loader or 'dataset' not in loader:
        raise KeyError(f'{args.config}: needs test_dataloader.dataset (a '
                       'one-shot test dataset)')
    dataset = loader['dataset']
    if not dataset.get('test_mode', False):
        raise ValueError(f'{args.config}: test_dataloader.dataset must have '
                         'test_mode=True (one-shot test episodes)')
    dataset['run'] = args.run
    if args.num_negatives is not None:
        dataset['num_negatives'] = args.num_negatives
    test_cfg = cfg.get('test_cfg') or {}
    cfg.test_cfg = dict(type='TestLoop', fp16=test_cfg.get('fp16', False))

    evaluator = cfg.get('test_evaluator')
    if evaluator is None:
        evaluators = []
    elif isinstance(evaluator, dict) and 'metrics' in evaluator:
        raise ValueError(f'{args.config}: test_evaluator with "metrics" is '
                         'not supported; give a metric or a list of them')
    else:
        evaluators = [evaluator] if isinstance(evaluator, dict) \
            else list(evaluator)
    cfg.test_evaluator = evaluators + [dict(type='ErrorAnalysisRecorder')]
    return cfg


def main(argv=None) -> dict:
    args = parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = '0'
    cfg = prepare_cfg(args)
    runner = build_runner(cfg)  # safe, strict checkpoint loading
    runner.test()

    recorders = [m for m in runner.test_loop.evaluator.metrics
                 if isinstance(m, ErrorAnalysisRecorder)]
    assert len(recorders) == 1, recorders
    recorder = recorders[0]
    meta = recorder.dataset_meta or {}
    if 'classes' not in meta:
        raise KeyError(f'{args.config}: the test dataset gives no '
                       "metainfo['classes']")
    analysis = analyze_errors(
        recorder.records, meta['classes'], score_thr=args.score_thr,
        iou_thr=args.iou_thr, seen_classes=meta.get('seen_classes', ()),
        unseen_classes=meta.get('unseen_classes', ()))
    analysis['settings'].update(
        config=args.config, checkpoint=args.checkpoint, run=args.run,
        num_negatives=cfg.test_dataloader.dataset.get('num_negatives', 0))

    out_dir = args.out_dir or osp.join(cfg.work_dir, 'errors')
    os.makedirs(out_dir, exist_ok=True)
    json_path = osp.join(out_dir, 'errors.json')
    with open(json_path, 'w') as f:
        json.dump(analysis, f, indent=2)
    png_path = osp.join(out_dir, 'confusions.png')
    draw_confusions(recorder.records, analysis, meta['classes'], png_path,
                    top_k=args.top_k)
    print(summary_text(analysis))
    print(f'Written: {json_path}, {png_path}')
    return analysis


if __name__ == '__main__':
    main()

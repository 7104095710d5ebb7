"""Print the headline of a one-shot test: AP50, the query-blind level and the
matching gain (seen and unseen, mean +- std over the query draws), and the
negative-target figures, from the ``oneshot_runs.json`` that
``tools/test.py`` writes.

    python tools/analysis/summarize_runs.py PATH [--title TEXT] \
        [--by-supercategory [--ann-file ANN]]

PATH is an ``oneshot_runs.json`` or a folder searched for the newest one
(e.g. the ``--work-dir`` of ``tools/test.py``).

``--by-supercategory`` adds one line per COCO ``supercategory`` of the test
annotation file (the json's recorded ``ann_file``, or ``--ann-file``), split
into its seen and its unseen classes: the classes' mean AP50, query-blind
AP50 and gain, mean +- std over the query draws. It tells whether a gap
between the seen and the unseen mean follows the seen/unseen line or a
group of harder classes (on the glyph data: one script).
"""
import argparse
import json
import os.path as osp
import sys
from typing import Dict, List, Optional, Sequence

import numpy as np

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))

from oneshot.evaluation.oneshot_metric import is_count_metric  # noqa: E402
from oneshot.evaluation.run_files import (  # noqa: E402
    find_runs_json, metric_prefix, read_runs_json)

ROWS = (('AP50', 'AP50'), ('blind_AP50', 'query-blind AP50'),
        ('gain', 'matching gain'), ('open_AP50', 'AP50 with negative targets'),
        ('FA_per_neg', 'false alarms per negative target (score >= 0.5)'))


def summary_lines(runs: dict) -> List[str]:
    """The headline table of an ``oneshot_runs.json`` as text lines."""
    mean: Dict[str, float] = runs['mean']
    std: Dict[str, float] = runs['std']
    prefix = metric_prefix(mean)

    def cell(key: str, signed: bool) -> str:
        if key not in mean:
            return '-'
        scale = 1 if is_count_metric(key) else 100
        digits = 2 if is_count_metric(key) else 1
        sign = '+' if signed else ''
        return (f'{scale * mean[key]:{sign}.{digits}f} +- '
                f'{scale * std[key]:.{digits}f}')

    lines = [f'{"":50s} {"all":>15s} {"seen":>15s} {"unseen":>15s}']
    for name, title in ROWS:
        if prefix + name not in mean:
            continue
        signed = name == 'gain'
        lines.append(f'{title:50s} ' + ' '.join(
            f'{cell(prefix + g + name, signed):>15s}'
            for g in ('', 'seen_', 'unseen_')))
    lines.append(f'(mean +- std over {runs["num_runs"]} query draws; AP in '
                 '%; the query-blind level is what a detector that finds '
                 'every object but ignores the query scores)')
    return lines


def supercategory_lines(runs: dict, supercategory: Dict[str, str],
                        unseen: Optional[Sequence[str]] = None) -> List[str]:
    """One line per (supercategory, seen / unseen) group of classes.

    Args:
        runs (dict): An ``oneshot_runs.json`` with per-run, per-class
            metrics (``runs``: one dict per query draw).
        supercategory (dict): Class name -> its group (the annotation
            file's ``supercategory``).
        unseen (Sequence[str], optional): The unseen classes; ``None``:
            every group is one row, marked ``-``.

    Each figure is the mean over the group's classes with a per-class AP50
    in the run, then mean +- sample std over the runs (as the headline's
    seen and unseen means). Classes without a per-class AP50 (no episode) are left
    out; a group with none is not printed.
    """
    per_run = runs.get('runs')
    if not per_run:
        raise ValueError('the json has no per-run metrics ("runs"): it was '
                         'not written by tools/test.py of this version.')
    prefix = metric_prefix(runs['mean'])
    ap_key = prefix + 'AP50_'
    classes = sorted({k[len(ap_key):] for r in per_run for k in r
                      if k.startswith(ap_key)})
    missing = [c for c in classes if c not in supercategory]
    if missing:
        raise ValueError(
            f'classes {missing[:5]} of the runs are not categories of the '
            'annotation file; pass the test set\'s file with --ann-file.')
    unseen_set = None if unseen is None else set(unseen)
    groups: Dict[tuple, List[str]] = {}
    for c in classes:
        status = '-' if unseen_set is None else (
            'unseen' if c in unseen_set else 'seen')
        groups.setdefault((supercategory[c], status), []).append(c)

    def cell(metric: str, names: List[str], signed: bool) -> str:
        means = []
        for r in per_run:
            vals = [r[f'{prefix}{metric}_{c}'] for c in names
                    if f'{prefix}{metric}_{c}' in r]
            if vals:
                means.append(100 * float(np.mean(vals)))
        if not means:
            return '-'
        sign = '+' if signed else ''
        std = float(np.std(means, ddof=1)) if len(means) > 1 else 0.0
        return f'{np.mean(means):{sign}.1f} +- {std:.1f}'

    lines = [f'{"supercategory":24s} {"":>6s} {"classes":>7s} '
             f'{"AP50":>13s} {"query-blind":>13s} {"gain":>13s}']
    order = sorted(groups, key=lambda g: (g[1] == 'unseen', g[0]))
    for name, status in order:
        names = groups[(name, status)]
        lines.append(
            f'{name[:24]:24s} {status:>6s} {len(names):7d} '
            f'{cell("AP50", names, False):>13s} '
            f'{cell("blind_AP50", names, False):>13s} '
            f'{cell("gain", names, True):>13s}')
    return lines


def read_supercategories(ann_file: str) -> Dict[str, str]:
    """Class name -> ``supercategory`` (``'-'`` where a category has
    none) of a COCO annotation file; errors name the file."""
    try:
        with open(ann_file) as f:
            cats = json.load(f)['categories']
        return {c['name']: str(c.get('supercategory') or '-') for c in cats}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(
            f'{ann_file}: cannot read the categories of a COCO annotation '
            f'file ({type(err).__name__}: {err}).') from err


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('path')
    parser.add_argument('--title', default='One-shot test')
    parser.add_argument(
        '--by-supercategory', action='store_true',
        help='add per-supercategory lines (seen and unseen classes apart)')
    parser.add_argument(
        '--ann-file', help='the test annotation file whose categories give '
        'the supercategories (default: the one the json records)')
    args = parser.parse_args()
    path = find_runs_json(args.path)
    runs = read_runs_json(path)
    print(f'{args.title} ({path}):')
    print('\n'.join(summary_lines(runs)))
    if not args.by_supercategory:
        return
    source = runs.get('source') or {}
    ann_file = args.ann_file or source.get('ann_file')
    if not ann_file:
        parser.error(f'{path} records no annotation file; give --ann-file.')
    try:
        supercategory = read_supercategories(ann_file)
        unseen = None
        if source.get('split') is not None:
            from oneshot.datasets.splits import resolve_split
            _, unseen = resolve_split(source['split'], list(supercategory),
                                      source=ann_file)
        lines = supercategory_lines(runs, supercategory, unseen)
    except ValueError as err:
        parser.error(f'{path}: {err}')
    print()
    print('\n'.join(lines))


if __name__ == '__main__':
    main()

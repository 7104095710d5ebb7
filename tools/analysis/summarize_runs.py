"""Print the headline of a one-shot test: AP50, the query-blind level and the
matching gain (seen and unseen, mean +- std over the query draws), and the
negative-target figures, from the ``oneshot_runs.json`` that
``tools/test.py`` writes.

    python tools/analysis/summarize_runs.py PATH [--title TEXT]

PATH is an ``oneshot_runs.json`` or a folder searched for the newest one
(e.g. the ``--work-dir`` of ``tools/test.py``).
"""
import argparse
import glob
import json
import os.path as osp
import sys
from typing import Dict, List

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))

from oneshot.evaluation.oneshot_metric import is_count_metric  # noqa: E402

ROWS = (('AP50', 'AP50'), ('blind_AP50', 'query-blind AP50'),
        ('gain', 'matching gain'), ('open_AP50', 'AP50 with negative targets'),
        ('FA_per_neg', 'false alarms per negative target (score >= 0.5)'))


def find_runs_json(path: str) -> str:
    """``path`` itself, or the newest ``oneshot_runs.json`` below it."""
    if osp.isfile(path):
        return path
    found = glob.glob(osp.join(path, '**', 'oneshot_runs.json'),
                      recursive=True)
    if not found:
        raise FileNotFoundError(
            f'No oneshot_runs.json under {path!r}; tools/test.py writes one '
            'into its work dir (<work_dir>/<timestamp>/oneshot_runs.json).')
    return max(found, key=osp.getmtime)


def summary_lines(runs: dict) -> List[str]:
    """The headline table of an ``oneshot_runs.json`` as text lines."""
    mean: Dict[str, float] = runs['mean']
    std: Dict[str, float] = runs['std']
    prefix = next((k[:-len('AP50')] for k in mean
                   if k.split('/')[-1] == 'AP50'), '')

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('path')
    parser.add_argument('--title', default='One-shot test')
    args = parser.parse_args()
    path = find_runs_json(args.path)
    with open(path) as f:
        runs = json.load(f)
    print(f'{args.title} ({path}):')
    print('\n'.join(summary_lines(runs)))


if __name__ == '__main__':
    main()

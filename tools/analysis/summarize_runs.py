"""Print the headline of a one-shot test: AP50, the query-blind level and the
matching gain (seen and unseen, mean +- std over the query draws), and the
negative-target figures, from the ``oneshot_runs.json`` that
``tools/test.py`` writes.

    python tools/analysis/summarize_runs.py PATH [--title TEXT]

PATH is an ``oneshot_runs.json`` or a folder searched for the newest one
(e.g. the ``--work-dir`` of ``tools/test.py``).
"""
import argparse
import os.path as osp
import sys
from typing import Dict, List

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('path')
    parser.add_argument('--title', default='One-shot test')
    args = parser.parse_args()
    path = find_runs_json(args.path)
    runs = read_runs_json(path)
    print(f'{args.title} ({path}):')
    print('\n'.join(summary_lines(runs)))


if __name__ == '__main__':
    main()

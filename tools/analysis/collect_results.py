"""The paper table from work dirs: seen and unseen AP50 per data split (mean
+- std over the query draws), the 4-split COCO average and VOC, next to the
published numbers of the model index, with the difference.

    python tools/analysis/collect_results.py WORK_DIR [WORK_DIR ...]
        [--out table.md] [--csv table.csv] [--model-index model-index.yml]

Every ``oneshot_runs.json`` below the given folders (or the files given) is
read (``tools/test.py`` writes one per test, see ``OneShotTestLoop``). Its
config and split come from the file's ``source`` entry, or for older files
from the config mmengine dumped into the work dir. Rows are grouped by
config family (the config name without ``_coco-splitN`` / ``_voc``); tests
of the same config and split are merged, the newest file winning per
metric. The published numbers are the model index's ``Results`` of the
config (``configs/<method>/metafile.yml``); Δ = measured - published. The
query-blind AP50 and the matching gain are added where the runs hold them.

The COCO average row appears when all four splits are there: the mean of
the four split means, with std sqrt(sum of the four variances) / 4 (the
draws of different splits are independent). See docs/model_zoo.md.
"""
import argparse
import csv
import math
import os
import os.path as osp
import sys
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))

from oneshot.evaluation.run_files import (  # noqa: E402
    RunSource, describe_runs_json, find_all_runs_json, metric_prefix)
from oneshot.utils.model_index import (  # noqa: E402
    collection_name, entry_config_aliases, load_model_index,
    published_results, strip_split)

COCO_SPLITS = ('COCO split1', 'COCO split2', 'COCO split3', 'COCO split4')
COCO_MEAN = 'COCO mean (4 splits)'
DATA_ORDER = COCO_SPLITS + (COCO_MEAN, 'VOC')
# (column title, metric name without group, group)
MEASURED = (('seen AP50', 'AP50', 'seen'), ('unseen AP50', 'AP50', 'unseen'))
EXTRA = (('query-blind seen', 'blind_AP50', 'seen'),
         ('query-blind unseen', 'blind_AP50', 'unseen'),
         ('gain seen', 'gain', 'seen'), ('gain unseen', 'gain', 'unseen'))

Cell = Optional[Tuple[float, float]]  # (mean, std) in %


class Row:
    """One table row: a config family on one data split."""

    def __init__(self, method: str, family: str, data: str) -> None:
        self.method, self.family, self.data = method, family, data
        self.cells: Dict[str, Cell] = {}
        self.draws: List[int] = []
        self.sources: List[str] = []
        self.published: Tuple[Optional[float], Optional[float]] = \
            (None, None)

    def delta(self, group: str) -> Optional[float]:
        measured = self.cells.get(f'{group} AP50')
        published = self.published[0 if group == 'seen' else 1]
        if measured is None or published is None:
            return None
        return measured[0] - published


def measured_cells(source: RunSource) -> Dict[str, Cell]:
    """AP50 (and query-blind AP50, gain) of one run file, in %."""
    mean, std = source.runs['mean'], source.runs['std']
    prefix = metric_prefix(mean)
    cells: Dict[str, Cell] = {}
    for title, name, group in MEASURED + EXTRA:
        key = f'{prefix}{group}_{name}'
        if key in mean:
            cells[title] = (100 * mean[key], 100 * std.get(key, 0.0))
    # Tested on one group only (episode_classes 'seen' / 'unseen'): the
    # overall AP50 is that group's.
    only = source.episode_classes
    if only in ('seen', 'unseen') and f'{only} AP50' not in cells and \
            f'{prefix}AP50' in mean:
        key = f'{prefix}AP50'
        cells[f'{only} AP50'] = (100 * mean[key], 100 * std.get(key, 0.0))
    return cells


def collect(paths: Sequence[str],
            index_file: Optional[str] = None) -> Tuple[List[Row], List[str]]:
    """Rows of the table from work dirs / run files, and warnings."""
    models = {m['Name']: m for m in load_model_index(index_file)}
    aliases = entry_config_aliases()
    files: List[str] = []
    for path in paths:
        found = find_all_runs_json(path)
        if not found:
            raise FileNotFoundError(
                f'No oneshot_runs.json under {path!r}: run tools/test.py '
                'with --work-dir inside it first.')
        files += [f for f in found if f not in files]
    sources = sorted((describe_runs_json(f) for f in files),
                     key=lambda s: osp.getmtime(s.json_path))
    rows: Dict[Tuple[str, str], Row] = OrderedDict()
    warnings: List[str] = []
    for source in sources:  # oldest first: newer files overwrite
        name = aliases.get(source.name, source.name)
        model = models.get(name)
        family = strip_split(name)
        method = collection_name(model) or family.split('_')[0]
        if source.name == 'unknown':
            warnings.append(f'{source.json_path}: no config recorded or '
                            'dumped next to it; listed as "unknown".')
        row = rows.setdefault((family, source.dataset),
                              Row(method, family, source.dataset))
        if model is not None and model['Name'] != name:
            warnings.append(f'{source.json_path}: {name} is listed as '
                            f'{model["Name"]} in the model index.')
        if model is not None:
            row.published = published_results(model).get(
                source.dataset, (None, None))
        row.cells.update(measured_cells(source))
        row.draws.append(int(source.runs['num_runs']))
        row.sources.append(source.json_path)
    out = list(rows.values())
    out += coco_means(out)
    order = {d: i for i, d in enumerate(DATA_ORDER)}
    families = list(OrderedDict.fromkeys(r.family for r in out))
    out.sort(key=lambda r: (families.index(r.family),
                            order.get(r.data, len(order)), r.data))
    return out, warnings


def coco_means(rows: List[Row]) -> List[Row]:
    """The 4-split average row of every family that has all four splits."""
    out = []
    for family in OrderedDict.fromkeys(r.family for r in rows):
        splits = {r.data: r for r in rows
                  if r.family == family and r.data in COCO_SPLITS}
        if len(splits) != len(COCO_SPLITS):
            continue
        first = splits[COCO_SPLITS[0]]
        mean_row = Row(first.method, family, COCO_MEAN)
        for title, _, _ in MEASURED + EXTRA:
            cells = [splits[s].cells.get(title) for s in COCO_SPLITS]
            if all(c is not None for c in cells):
                mean_row.cells[title] = (
                    sum(c[0] for c in cells) / 4,
                    math.sqrt(sum(c[1]**2 for c in cells)) / 4)
        published = []
        for i in range(2):
            values = [splits[s].published[i] for s in COCO_SPLITS]
            published.append(sum(values) / 4 if all(
                v is not None for v in values) else None)
        mean_row.published = (published[0], published[1])
        mean_row.draws = sorted(d for s in COCO_SPLITS
                                for d in splits[s].draws)
        out.append(mean_row)
    return out


def _pm(cell: Cell, signed: bool = False) -> str:
    if cell is None:
        return '-'
    sign = '+' if signed else ''
    return f'{cell[0]:{sign}.1f} ± {cell[1]:.1f}'


def _num(value: Optional[float], signed: bool = False) -> str:
    if value is None:
        return '-'
    return f'{value:+.1f}' if signed else f'{value:.1f}'


def _draws(row: Row) -> str:
    return '/'.join(str(d) for d in sorted(set(row.draws))) or '-'


def extra_columns(rows: List[Row]) -> List[Tuple[str, str, str]]:
    """The query-blind / gain columns that some row has."""
    return [c for c in EXTRA if any(c[0] in r.cells for r in rows)]


def markdown_table(rows: List[Row]) -> str:
    """The table as Markdown (AP50 in %)."""
    extra = extra_columns(rows)
    head = ['method', 'config', 'data', 'draws', 'seen AP50',
            'unseen AP50', 'published seen', 'published unseen', 'Δ seen',
            'Δ unseen'] + [c[0] for c in extra]
    lines = ['| ' + ' | '.join(head) + ' |',
             '|' + '|'.join('---' for _ in head) + '|']
    for r in rows:
        cells = [r.method, r.family, r.data, _draws(r),
                 _pm(r.cells.get('seen AP50')),
                 _pm(r.cells.get('unseen AP50')), _num(r.published[0]),
                 _num(r.published[1]), _num(r.delta('seen'), True),
                 _num(r.delta('unseen'), True)]
        cells += [_pm(r.cells.get(c[0]), signed=c[1] == 'gain')
                  for c in extra]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def write_csv(rows: List[Row], path: str) -> None:
    """The table as CSV: one column per number (means and stds apart)."""
    extra = extra_columns(rows)
    titles = [c[0] for c in MEASURED] + [c[0] for c in extra]
    head = ['method', 'config', 'data', 'draws']
    for t in titles:
        key = t.replace(' ', '_').replace('-', '_')
        head += [key, f'{key}_std']
    head += ['published_seen_AP50', 'published_unseen_AP50', 'delta_seen',
             'delta_unseen', 'sources']

    def fmt(v: Optional[float]) -> str:
        return '' if v is None else f'{v:.4f}'

    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(head)
        for r in rows:
            line = [r.method, r.family, r.data, _draws(r)]
            for t in titles:
                cell = r.cells.get(t)
                line += [fmt(cell[0]), fmt(cell[1])] if cell else ['', '']
            line += [fmt(r.published[0]), fmt(r.published[1]),
                     fmt(r.delta('seen')), fmt(r.delta('unseen')),
                     ' '.join(r.sources)]
            writer.writerow(line)


def main(argv=None) -> List[Row]:
    parser = argparse.ArgumentParser(
        description='Collect oneshot_runs.json files into the paper table.')
    parser.add_argument('paths', nargs='+', metavar='WORK_DIR',
                        help='work dirs (searched recursively) or run files')
    parser.add_argument('--out', help='also write the Markdown table here')
    parser.add_argument('--csv', help='also write the table as CSV here')
    parser.add_argument('--model-index', default=None,
                        help='model index with the published numbers '
                        '(default: the repository\'s model-index.yml)')
    args = parser.parse_args(argv)
    rows, warnings = collect(args.paths, args.model_index)
    table = markdown_table(rows)
    note = ('AP50 in %, mean ± std over the query draws; published: the '
            'model index (docs/methods.md); Δ = measured - published.')
    print(table)
    print(note)
    for warning in warnings:
        print(f'warning: {warning}', file=sys.stderr)
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            f.write(table + '\n\n' + note + '\n')
    if args.csv:
        os.makedirs(osp.dirname(osp.abspath(args.csv)), exist_ok=True)
        write_csv(rows, args.csv)
    return rows


if __name__ == '__main__':
    main()

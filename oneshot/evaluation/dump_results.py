"""Raw predictions of a multi-run one-shot test, one pickle per query draw."""
import os.path as osp
from typing import List

from mmdet.evaluation import DumpDetResults
from mmdet.registry import METRICS
from mmengine.fileio import dump
from mmengine.logging import print_log

from .oneshot_metric import episode_order


def run_file_path(out_file_path: str, run: int) -> str:
    """``preds.pkl`` -> ``preds_run{run}.pkl`` (same folder and suffix)."""
    stem, ext = osp.splitext(out_file_path)
    return f'{stem}_run{run}{ext}'


@METRICS.register_module()
class DumpOneShotResults(DumpDetResults):
    """mmdet's ``DumpDetResults`` for :class:`OneShotTestLoop`: each query
    draw is written to its own file instead of overwriting the last.

    ``tools/test.py --out preds.pkl --runs 3`` writes ``preds_run0.pkl``,
    ``preds_run1.pkl`` and ``preds_run2.pkl``: for run ``r``,
    ``out_file_path`` with ``_run{r}`` before the suffix (always, also for a
    single run, so that scripts find the same names whatever ``--runs``
    is). Each file is what ``DumpDetResults`` writes (a list with one dict
    per episode: ``pred_instances`` and the episode metainfo, ``run`` and
    ``query_ann_ids`` included), so mmdet's offline tools read it; the
    episodes are in dataset order (``episode_id``), as one process writes
    them, also after a distributed test.

    The run is taken from the episodes' ``run`` metainfo (set by
    ``OneShotCocoDataset.set_run``); predictions without it (a dataset that
    is not one-shot) go to ``out_file_path`` itself.

    Args:
        out_file_path (str): Path template, ending in ``.pkl`` or
            ``.pickle``.
        **kwargs: ``DumpDetResults`` arguments (``collect_device`` ...).
    """

    def compute_metrics(self, results: List[dict]) -> dict:
        runs = sorted({r.get('run') for r in results}, key=str)
        if len(runs) > 1:
            raise ValueError(
                f'DumpOneShotResults: one evaluation holds episodes of query '
                f'draws {runs}; it expects one draw per evaluation '
                '(OneShotTestLoop evaluates each run on its own).')
        # Dataset order, also when several ranks' parts were gathered; a
        # repeated episode is an error, as in the metric.
        if all('episode_id' in r for r in results):
            results = episode_order(results)
        run = runs[0] if runs else None
        path = self.out_file_path if run is None or run < 0 else \
            run_file_path(self.out_file_path, run)
        dump(results, path)
        print_log(f'Raw predictions of query draw {run} ({len(results)} '
                  f'episodes) saved to {path}.', logger='current')
        return {}

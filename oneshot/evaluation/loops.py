"""The one-shot test loop: R seeded query draws, every run reported, then
mean and standard deviation — the averaging the papers left to the user."""
import copy
import json
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Sequence, Union

import numpy as np
from mmdet.registry import LOOPS
from mmengine.dist import is_main_process
from mmengine.runner import TestLoop
from terminaltables import AsciiTable

from .oneshot_metric import format_metric, summary_line

# Reported first, in this order, each with its seen_/unseen_ means.
HEADLINE = ('AP50', 'blind_AP50', 'gain', 'open_AP50', 'FA_per_neg')


@LOOPS.register_module()
class OneShotTestLoop(TestLoop):
    """Run the test set once per query draw and summarise the runs.

    For run ``r`` the loop shallow-copies the built test dataset, calls
    ``set_run(r)`` on the copy (a one-shot test dataset picks each episode's
    query from its run, see ``OneShotCocoDataset``) and builds a fresh
    dataloader for it — persistent workers would otherwise keep serving a
    copy of the previous run's dataset. Each run is evaluated and logged
    like an ordinary test epoch; afterwards a table of every run with mean
    and std is logged (AP50, the query-blind level and the matching gain
    first) and written to ``<log_dir>/oneshot_runs.json``::

        {"runs": [{"oneshot/AP50": ..., ...}, ...],
         "mean": {...}, "std": {...}, "num_runs": R,
         "source": {"config": ..., "checkpoint": ..., "split": ...,
                    "episode_classes": ..., "ann_file": ...}}

    ``runner.test()`` returns the means under the metric names
    (``oneshot/AP50``, ``oneshot/unseen_AP50``, ...) and the standard
    deviations as ``<name>_std``. The std is the sample standard deviation
    (``ddof=1``: the spread one would expect between two papers' runs); with
    one run it is 0.

    Args:
        runner: The runner.
        dataloader (dict): The test dataloader config (must be a dict so
            that it can be rebuilt for every run).
        evaluator: The evaluator config or object.
        fp16 (bool): Autocast inference. Defaults to False.
        runs (int): Number of query draws. Defaults to 5.
    """

    def __init__(self, runner, dataloader: Union[dict, object], evaluator,
                 fp16: bool = False, runs: int = 5) -> None:
        if not isinstance(dataloader, dict):
            raise TypeError(
                'OneShotTestLoop rebuilds the test dataloader for every '
                'query draw, so test_dataloader must be a config dict.')
        if runs < 1:
            raise ValueError(f'test_cfg.runs must be >= 1, got {runs}')
        self._dataloader_cfg = copy.deepcopy(dataloader)
        super().__init__(runner, dataloader, evaluator, fp16)
        self.runs = runs
        dataset = self.dataloader.dataset
        if not hasattr(dataset, 'set_run'):
            raise TypeError(
                f'{type(dataset).__name__} has no set_run(run), which '
                'OneShotTestLoop needs to draw the queries of each run; use '
                'a one-shot dataset (OneShotCocoDataset) or the plain '
                "test_cfg = dict(type='TestLoop') (test_cfg.runs only "
                'applies to one-shot datasets).')
        self.base_dataset = dataset

    def dataloader_for_run(self, run: int):
        """A fresh dataloader over a copy of the dataset set to ``run``.

        ``set_run`` changes a dataset in place, so the built dataset is
        copied (shallow: the query bank and annotations are shared) and
        never switched itself. The dataloader is built by mmengine's own
        ``TestLoop`` constructor from the config dict, so seed and
        ``diff_rank_seed`` are chosen exactly as for the first dataloader
        (mmengine reads them from the runner's private ``_randomness_cfg``;
        0.10.7 has no public accessor, and this way only mmengine does).
        """
        dataset = copy.copy(self.base_dataset)
        dataset.set_run(run)
        cfg = copy.copy(self._dataloader_cfg)
        cfg['dataset'] = dataset
        return TestLoop(self.runner, cfg, self.evaluator, self.fp16).dataloader

    def run(self) -> Dict[str, float]:
        """Test every run; returns the mean (and ``_std``) of each metric.

        Hooks: ``before_test`` and ``after_test`` once, ``before_test_epoch``
        / ``after_test_epoch`` once per run (each run is an epoch). Why not
        ``super().run()`` per run: mmengine 0.10.7's ``TestLoop.run`` is
        ``before_test``, one epoch and ``after_test`` in one method, with no
        per-epoch method to repeat, so its epoch body is repeated here:
        ``model.eval()``, ``test_loss.clear()``, ``run_iter`` over the
        batches (mmengine's own), ``evaluator.evaluate``. Unlike mmengine's
        it does not add test losses to the metrics (one-shot detectors
        return none from ``test_step``).
        """
        self.runner.call_hook('before_test')
        per_run: List[Dict[str, float]] = []
        for run in range(self.runs):
            self.dataloader = self.dataloader_for_run(run)
            self.runner.logger.info(
                f'One-shot test: query draw {run + 1}/{self.runs}')
            self.runner.call_hook('before_test_epoch')
            self.runner.model.eval()
            self.test_loss.clear()
            for idx, data_batch in enumerate(self.dataloader):
                self.run_iter(idx, data_batch)
            metrics = self.evaluator.evaluate(len(self.dataloader.dataset))
            per_run.append(metrics)
            self.runner.call_hook('after_test_epoch', metrics=metrics)
        summary = summarize_runs(per_run)
        self.report(per_run, summary)
        self.runner.call_hook('after_test')
        return summary

    def report(self, per_run: List[Dict[str, float]],
               summary: Dict[str, float]) -> None:
        """Log the run table and write the JSON (main process only)."""
        keys = [k for k in summary if not k.endswith('_std')]
        headline = [f'{g}{name}' for name in HEADLINE
                    for g in ('', 'seen_', 'unseen_')]
        head = sorted((k for k in keys if k.split('/')[-1] in headline),
                      key=lambda k: headline.index(k.split('/')[-1]))
        order = head + [k for k in keys if k not in head]
        rows = [['metric'] + [f'run {r}' for r in range(len(per_run))] +
                ['mean', 'std']]
        for k in order:
            rows.append([k] + [format_metric(k, m[k]) if k in m else '-'
                               for m in per_run] +
                        [format_metric(k, summary[k]),
                         format_metric(k, summary[k + '_std'])])
        self.runner.logger.info(
            f'One-shot results over {len(per_run)} query draws (AP50 and '
            'gain in %, FA_per_neg in boxes per negative target):\n'
            + AsciiTable(rows).table)
        means = {k: summary[k] for k in head}
        stds = {k: summary[k + '_std'] for k in head}
        self.runner.logger.info(
            f'One-shot summary (mean over {len(per_run)} query draws): '
            + summary_line(means) + '\nstd over draws: ' + summary_line(stds))
        if is_main_process():
            path = osp.join(self.runner.log_dir, 'oneshot_runs.json')
            with open(path, 'w') as f:
                json.dump(dict(
                    num_runs=len(per_run), runs=per_run,
                    mean={k: summary[k] for k in order},
                    std={k: summary[k + '_std'] for k in order},
                    source=self.source()), f, indent=2)
            self.runner.logger.info(f'Per-run results written to {path}')

    def source(self) -> Dict[str, object]:
        """What was tested, for tools that collect many runs
        (``tools/analysis/collect_results.py``): the config file, the
        checkpoint, and the test set's split, episode classes and
        annotation file."""
        dataset = self.base_dataset
        cfg = self.runner.cfg
        return dict(
            config=cfg.filename, checkpoint=cfg.get('load_from'),
            split=getattr(dataset, 'split', None),
            episode_classes=getattr(dataset, 'episode_classes', None),
            ann_file=getattr(dataset, 'ann_file', None))


def summarize_runs(per_run: Sequence[Dict[str, float]]) -> Dict[str, float]:
    """Mean and sample std (``<key>_std``) of every metric over the runs.

    A metric missing from some run (e.g. a class without episodes in one
    draw) is averaged over the runs that have it.
    """
    keys: List[str] = []
    for m in per_run:
        keys += [k for k in m if k not in keys]
    out: Dict[str, float] = OrderedDict()
    for k in keys:
        values = np.array([m[k] for m in per_run if k in m], dtype=float)
        out[k] = float(values.mean())
        out[k + '_std'] = float(values.std(ddof=1)) if len(values) > 1 \
            else 0.0
    return out

"""Finding and reading the ``oneshot_runs.json`` files that
:class:`~oneshot.evaluation.OneShotTestLoop` writes, and telling which
config and data split each one belongs to.

Used by ``tools/analysis/summarize_runs.py`` (one test) and
``tools/analysis/collect_results.py`` (the paper table over many work dirs).
"""
import glob
import json
import os.path as osp
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

RUNS_JSON = 'oneshot_runs.json'

# Built-in split names -> the dataset names of the model-index Results.
SPLIT_LABELS = {
    'coco_split1': 'COCO split1', 'coco_split2': 'COCO split2',
    'coco_split3': 'COCO split3', 'coco_split4': 'COCO split4', 'voc': 'VOC'
}


def find_all_runs_json(path: str) -> List[str]:
    """``path`` itself if it is a file, else every ``oneshot_runs.json``
    below it, sorted by path."""
    if osp.isfile(path):
        return [path]
    if not osp.isdir(path):
        raise FileNotFoundError(f'{path!r} is neither a file nor a folder.')
    return sorted(glob.glob(osp.join(path, '**', RUNS_JSON),
                            recursive=True))


def find_runs_json(path: str) -> str:
    """``path`` itself, or the newest ``oneshot_runs.json`` below it."""
    found = find_all_runs_json(path)
    if not found:
        raise FileNotFoundError(
            f'No {RUNS_JSON} under {path!r}; tools/test.py writes one '
            f'into its work dir (<work_dir>/<timestamp>/{RUNS_JSON}).')
    return max(found, key=osp.getmtime)


def read_runs_json(path: str) -> Dict[str, Any]:
    """Load one ``oneshot_runs.json``; errors name the file."""
    try:
        with open(path) as f:
            runs = json.load(f)
    except (OSError, ValueError) as e:
        raise ValueError(f'{path}: cannot read it as JSON ({e}).') from e
    missing = [k for k in ('mean', 'std', 'num_runs') if k not in runs]
    if missing:
        raise ValueError(
            f'{path}: not an oneshot_runs.json of tools/test.py (no '
            f'{", ".join(missing)}).')
    return runs


def metric_prefix(mean: Dict[str, float]) -> str:
    """The metric name prefix of a run file (``'oneshot/'``): what comes
    before the last ``/`` of its AP50 keys."""
    key = next((k for k in mean if k.endswith('AP50')), '')
    return key.rsplit('/', 1)[0] + '/' if '/' in key else ''


@dataclass
class RunSource:
    """Which test a run file holds.

    Attributes:
        json_path (str): The ``oneshot_runs.json``.
        config (str, optional): The config file as given to the test
            (recorded in the json, or the config mmengine dumped into the
            work dir).
        name (str): The config's stem (e.g. ``coae_r50-c4_8xb2-12e_voc``);
            ``'unknown'`` when nothing tells.
        split: The test set's split (a built-in name or a dict of classes).
        episode_classes (str, optional): ``'seen'``, ``'unseen'`` or
            ``'all'``.
        runs (dict): The file's content.
    """
    json_path: str
    config: Optional[str]
    name: str
    split: Any
    episode_classes: Optional[str]
    runs: Dict[str, Any] = field(repr=False, default_factory=dict)

    @property
    def dataset(self) -> str:
        """``'COCO split1'`` .. ``'COCO split4'``, ``'VOC'``, or
        ``'custom'`` for class lists of one's own."""
        if isinstance(self.split, str):
            return SPLIT_LABELS.get(self.split, self.split)
        return 'custom' if self.split is not None else 'unknown'


def _dumped_configs(json_path: str) -> List[str]:
    """Configs mmengine dumped for the run of ``json_path``
    (``<work_dir>/<timestamp>/oneshot_runs.json``): the one of the run
    (``<timestamp>/vis_data/config.py``) first, then the work dir's ``*.py``
    (named like the config file), newest first."""
    log_dir = osp.dirname(osp.abspath(json_path))
    work_dir = osp.dirname(log_dir)
    out = [p for p in [osp.join(log_dir, 'vis_data', 'config.py')]
           if osp.isfile(p)]
    out += sorted(glob.glob(osp.join(work_dir, '*.py')), key=osp.getmtime,
                  reverse=True)
    return out


def _read_text(path: str) -> str:
    with open(path, encoding='utf-8', errors='replace') as f:
        return f.read()


def describe_runs_json(path: str) -> RunSource:
    """Read a run file and work out its config and split.

    The json's ``source`` entry (written by the test loop) is used first;
    older files fall back to the configs mmengine dumped into the work dir:
    the run's own dump gives the split, the work dir's ``<config name>.py``
    the name.
    """
    runs = read_runs_json(path)
    source = runs.get('source') or {}
    config = source.get('config')
    split = source.get('split')
    episode_classes = source.get('episode_classes')
    dumped = _dumped_configs(path)
    if config is None:
        named = [p for p in dumped if osp.basename(p) != 'config.py']
        if named and dumped[0].endswith(osp.join('vis_data', 'config.py')):
            own = _read_text(dumped[0])
            same = [p for p in named if _read_text(p) == own]
            named = same or named
        config = named[0] if named else None
    if split is None and dumped:
        from mmengine.config import Config
        try:
            cfg = Config.fromfile(dumped[0], import_custom_modules=False)
            dataset = cfg.test_dataloader.dataset
            split = dataset.get('split')
            episode_classes = episode_classes or dataset.get(
                'episode_classes')
        except Exception:  # an unusual config: leave the split unknown
            split = None
    name = osp.splitext(osp.basename(config))[0] if config else 'unknown'
    return RunSource(json_path=path, config=config, name=name, split=split,
                     episode_classes=episode_classes, runs=runs)

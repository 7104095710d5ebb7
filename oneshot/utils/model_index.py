"""Reading the model zoo metadata: ``model-index.yml`` and the
``configs/<method>/metafile.yml`` files it imports (OpenMMLab's model-index
format, docs/model_zoo.md).

Each metafile has ``Collections`` (one per method: paper, code,
architecture) and ``Models`` (one per config: training data, schedule,
batch size, backbone pre-training, and the published AP50 as ``Results``,
one entry per data split with ``seen AP50`` and ``unseen AP50``).
"""
import os.path as osp
import re
from typing import Dict, List, Optional, Tuple

import yaml

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TASK = 'One-shot Object Detection'
METRICS = ('seen AP50', 'unseen AP50')


def load_model_index(index_file: Optional[str] = None) -> List[dict]:
    """Every model entry of the index, with two keys added:
    ``_metafile`` (its path, relative to the repository) and ``_collection``
    (its collection's entry).

    Args:
        index_file (str, optional): Defaults to the repository's
            ``model-index.yml``.
    """
    index_file = index_file or osp.join(REPO, 'model-index.yml')
    root = osp.dirname(osp.abspath(index_file))
    with open(index_file) as f:
        index = yaml.safe_load(f) or {}
    models: List[dict] = []
    for rel in index.get('Import', []):
        with open(osp.join(root, rel)) as f:
            meta = yaml.safe_load(f) or {}
        collections = {c['Name']: c for c in meta.get('Collections', [])}
        for model in meta.get('Models', []):
            entry = dict(model)
            entry['_metafile'] = rel
            entry['_collection'] = collections.get(model.get('In Collection'))
            models.append(entry)
    return models


def published_results(model: dict) -> Dict[str, Tuple[float, float]]:
    """``{dataset: (seen AP50, unseen AP50)}`` of a model entry."""
    out = {}
    for result in model.get('Results') or []:
        if result.get('Task') != TASK:
            continue
        metrics = result.get('Metrics') or {}
        out[result['Dataset']] = tuple(
            float(metrics[m]) if metrics.get(m) is not None else None
            for m in METRICS)
    return out


def entry_config_aliases(configs_dir: Optional[str] = None) -> Dict[str, str]:
    """Top-level entry configs -> the config they inherit from:
    ``{'coae_r50': 'coae_r50-c4_8xb2-12e_coco-split1', ...}`` (read from
    their single ``_base_ = './<method>/<name>.py'`` line)."""
    import glob
    configs_dir = configs_dir or osp.join(REPO, 'configs')
    aliases = {}
    for path in sorted(glob.glob(osp.join(configs_dir, '*.py'))):
        with open(path) as f:
            found = re.search(r"^_base_\s*=\s*['\"]\./[^'\"]+/([^/'\"]+)\.py",
                              f.read(), flags=re.MULTILINE)
        if found:
            aliases[osp.splitext(osp.basename(path))[0]] = found.group(1)
    return aliases


def models_by_name(index_file: Optional[str] = None) -> Dict[str, dict]:
    """Model entries by name, entry-config aliases included."""
    models = {m['Name']: m for m in load_model_index(index_file)}
    for alias, target in entry_config_aliases().items():
        if target in models and alias not in models:
            models[alias] = models[target]
    return models


def collection_name(model: Optional[dict]) -> Optional[str]:
    """The method name of a model entry (its collection)."""
    return model.get('In Collection') if model else None


def strip_split(name: str) -> str:
    """A config name without its data part: ``coae_r50-c4_8xb2-12e``."""
    return re.sub(r'_(coco-split[1-4]|voc)$', '', name)

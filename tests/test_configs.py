"""Every user-facing config loads, imports the plugin, builds its model and
names registered dataset, transform and evaluator types."""
import glob
import os.path as osp

import pytest
from mmdet.registry import DATASETS, METRICS, MODELS, TRANSFORMS
from mmengine.config import Config
from mmengine.registry import init_default_scope
from quickstart_utils import REPO

import oneshot  # noqa: F401

CONFIGS = sorted(
    osp.relpath(p, osp.join(REPO, 'configs'))
    for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'),
                       recursive=True)
    if '_base_' not in p)


def test_every_method_has_entry_configs():
    for method in ('ait', 'cat', 'coae', 'bhrl', 'matching-fcos', 'saft',
                   'siamese-faster-rcnn'):
        assert f'{method}_r50.py' in CONFIGS, method
        splits = [c for c in CONFIGS if c.startswith(f'{method}/')]
        for data in ('coco-split1', 'coco-split2', 'coco-split3',
                     'coco-split4', 'voc'):
            assert any(data in c for c in splits), (method, data)


@pytest.mark.parametrize('name', CONFIGS)
def test_config_builds(name):
    cfg = Config.fromfile(osp.join(REPO, 'configs', name))
    assert 'oneshot' in cfg.custom_imports['imports'], name
    init_default_scope('mmdet')
    for loader in ('train_dataloader', 'test_dataloader'):
        dataset = cfg[loader].dataset
        assert DATASETS.get(dataset.type) is not None, (name, dataset.type)
        for step in dataset.pipeline:
            assert TRANSFORMS.get(step['type']) is not None, (name, step)
        assert dataset.get('split'), f'{name}: {loader} has no split'
    evaluator = cfg.test_evaluator
    assert METRICS.get(evaluator.type) is not None
    build_oneshot_model(cfg)


def build_oneshot_model(cfg: Config):
    """Build the config's model (no weight download) and check that it is
    a one-shot detector; shared with tests/test_model_index.py."""
    init_default_scope('mmdet')
    cfg.model.backbone.init_cfg = None  # no weight download
    model = MODELS.build(cfg.model)
    assert hasattr(model, 'extract_query_feat')
    assert model.data_preprocessor.__class__.__name__ == \
        'OneShotDataPreprocessor'
    return model

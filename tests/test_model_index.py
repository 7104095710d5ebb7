"""Model zoo metadata (model-index.yml, configs/<method>/metafile.yml):
every entry's config exists and builds, every method config has an entry,
and the published numbers are those of docs/methods.md."""
import glob
import os.path as osp
import re

import pytest
import yaml
from mmengine.config import Config
from quickstart_utils import REPO
from test_configs import build_oneshot_model

from oneshot.utils.model_index import (METRICS, TASK, entry_config_aliases,
                                       load_model_index, published_results)

MODELS = load_model_index()
DATASETS = ('COCO split1', 'COCO split2', 'COCO split3', 'COCO split4',
            'VOC')
METHOD_DIRS = sorted(
    osp.basename(osp.dirname(p))
    for p in glob.glob(osp.join(REPO, 'configs', '*', '*.py'))
    if osp.basename(osp.dirname(p)) not in ('_base_', 'quickstart'))
# Rows of docs/methods.md, "Published AP50 at a glance" -> collections.
DOC_ROWS = {
    'Siamese Mask R-CNN': ['Siamese Faster R-CNN'],
    'CoAE': ['CoAE'],
    'AIT': ['AIT'],
    'CAT': ['CAT'],
    'BHRL': ['BHRL'],
    'Matching-FCOS (+ SARM)': ['Matching-FCOS', 'Matching-FCOS + SARM'],
    'SaFT': ['SaFT'],
}


def test_model_index_imports_one_metafile_per_method():
    with open(osp.join(REPO, 'model-index.yml')) as f:
        index = yaml.safe_load(f)
    expected = [f'configs/{d}/metafile.yml'
                for d in sorted(set(METHOD_DIRS))]
    assert sorted(index['Import']) == expected
    for rel in expected:
        assert osp.isfile(osp.join(REPO, rel)), rel


def test_collections_have_paper_code_and_architecture():
    for rel in sorted({m['_metafile'] for m in MODELS}):
        with open(osp.join(REPO, rel)) as f:
            meta = yaml.safe_load(f)
        assert meta['Collections'], rel
        for c in meta['Collections']:
            assert c['Paper']['URL'].startswith('https://'), c['Name']
            assert c['Paper']['Title'], c['Name']
            assert c['Metadata']['Architecture'], c['Name']
            assert c['Metadata']['Training Data'], c['Name']
            assert osp.isfile(osp.join(REPO, c['README'])), c['README']
            assert osp.isfile(osp.join(REPO, c['Code']['URL'])), c['Code']


@pytest.mark.parametrize('model', MODELS, ids=[m['Name'] for m in MODELS])
def test_entry_config_exists_and_builds(model):
    assert model['_collection'] is not None, (
        f'{model["Name"]}: In Collection {model["In Collection"]!r} is not '
        f'a collection of {model["_metafile"]}')
    path = osp.join(REPO, model['Config'])
    assert osp.isfile(path), model['Config']
    assert osp.splitext(osp.basename(path))[0] == model['Name']
    assert osp.dirname(model['Config']) == osp.dirname(model['_metafile'])
    meta = model['Metadata']
    for key in ('Training Data', 'Epochs', 'Batch Size',
                'Backbone Pre-training'):
        assert meta.get(key), (model['Name'], key)
    assert 'Weights' not in model or model['Weights'] in (None, '')
    cfg = Config.fromfile(path)
    assert cfg.train_cfg.max_epochs == meta['Epochs'], model['Name']
    assert cfg.train_dataloader.batch_size * 8 == meta['Batch Size']
    split = cfg.test_dataloader.dataset.split
    expected = 'VOC' if split == 'voc' else f'COCO split{split[-1]}'
    for result in model.get('Results') or []:
        assert result['Task'] == TASK
        assert result['Dataset'] == expected, model['Name']
        assert set(result['Metrics']) == set(METRICS)
    build_oneshot_model(cfg)


def test_every_method_config_has_an_entry():
    names = {m['Name'] for m in MODELS}
    configs = sorted(
        p for p in glob.glob(osp.join(REPO, 'configs', '*', '*.py'))
        if osp.basename(osp.dirname(p)) not in ('_base_', 'quickstart'))
    assert configs
    for path in configs:
        assert osp.splitext(osp.basename(path))[0] in names, path
    # Top-level entry configs inherit from a config that has one.
    entries = sorted(glob.glob(osp.join(REPO, 'configs', '*.py')))
    aliases = entry_config_aliases()
    assert entries
    for path in entries:
        stem = osp.splitext(osp.basename(path))[0]
        assert aliases.get(stem) in names, path


def published_table():
    """docs/methods.md, "Published AP50 at a glance": {row: {dataset:
    (seen, unseen)}} for the rows with numbers, plus the stated means."""
    with open(osp.join(REPO, 'docs', 'methods.md')) as f:
        text = f.read()
    section = text.split('## Published AP50 at a glance', 1)[1]
    rows, means = {}, {}
    # The first table only (the per-class VOC table follows).
    table = re.search(r'^\|.*?(?=\n\s*\n)', section,
                      flags=re.MULTILINE | re.DOTALL).group(0)
    assert '| VOC seen | VOC unseen | COCO seen | COCO unseen |' in table
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip('|').split('|')]
        if len(cells) != 5 or cells[0] in ('method', '---'):
            continue
        name, voc_seen, voc_unseen, coco_seen, coco_unseen = cells
        values = {}
        coco = [re.fullmatch(r'([\d. /]+), ([\d.]+)', c)
                for c in (coco_seen, coco_unseen)]
        # An unseen cell reading "unverified" (SaFT): seen numbers only,
        # the model index holds `unseen AP50: null`.
        if coco[0] and (coco[1] or coco_unseen == 'unverified'):
            seen, unseen = ([float(v) for v in m.group(1).split('/')]
                            if m else [None] * 4 for m in coco)
            for i in range(4):
                values[f'COCO split{i + 1}'] = (seen[i], unseen[i])
            means[name] = tuple(float(m.group(2)) if m else None
                                for m in coco)
        if re.fullmatch(r'[\d.]+', voc_seen):
            values['VOC'] = (float(voc_seen), float(voc_unseen))
        rows[name] = values
    return rows, means


def test_results_match_docs_methods():
    rows, means = published_table()
    assert set(DOC_ROWS) <= set(rows), sorted(rows)
    by_collection = {}
    for model in MODELS:
        for dataset, values in published_results(model).items():
            key = (model['In Collection'], dataset)
            assert key not in by_collection, key
            by_collection[key] = values
    collections = {m['In Collection'] for m in MODELS}
    assert collections == {c for cs in DOC_ROWS.values() for c in cs}
    for row, names in DOC_ROWS.items():
        for name in names:
            for dataset in DATASETS:
                assert by_collection.get((name, dataset)) == \
                    rows[row].get(dataset), (row, name, dataset)
    # Spot checks, and the means the docs state.
    assert by_collection[('CoAE', 'VOC')] == (55.1, 63.8)
    assert by_collection[('AIT', 'COCO split3')] == (45.8, 22.3)
    assert by_collection[('BHRL', 'COCO split2')] == (52.1, 29.0)
    assert by_collection[('Siamese Faster R-CNN', 'COCO split4')] == (36.6,
                                                                      17.0)
    assert not any(c == 'CAT' for c, _ in by_collection)
    for row, (seen, unseen) in means.items():
        for name in DOC_ROWS.get(row, []):
            values = [by_collection[(name, f'COCO split{i}')]
                      for i in range(1, 5)]
            assert round(sum(v[0] for v in values) / 4 + 1e-9, 1) == seen
            if unseen is None:
                assert all(v[1] is None for v in values), (row, name)
                continue
            assert round(sum(v[1] for v in values) / 4 + 1e-9, 1) == unseen

"""tools/analysis/collect_results.py on fabricated work dirs with known
numbers: the paper table (per split, COCO average, VOC), the published
numbers of the model index and the differences, query-blind and gain
columns, runs identified from the json's source or from the config
mmengine dumped, newest test winning, CSV."""
import csv
import json
import os
import os.path as osp
import subprocess
import sys
import time

import pytest
from quickstart_utils import REPO

COAE = 'configs/coae/coae_r50-c4_8xb2-12e_coco-split{}.py'
# CoAE's published AP50 (docs/methods.md): COCO splits 1-4, seen / unseen.
COAE_SEEN = [42.2, 40.2, 39.9, 41.3]
COAE_UNSEEN = [23.4, 23.6, 20.5, 20.4]


def write_runs(log_dir, values, num_runs=5, source=None, std=0.004):
    """An oneshot_runs.json with the given means (fractions) and ``std``
    for every metric."""
    os.makedirs(log_dir, exist_ok=True)
    mean = {f'oneshot/{k}': v for k, v in values.items()}
    runs = dict(num_runs=num_runs, runs=[mean] * num_runs, mean=mean,
                std={k: std for k in mean})
    if source is not None:
        runs['source'] = source
    path = osp.join(log_dir, 'oneshot_runs.json')
    with open(path, 'w') as f:
        json.dump(runs, f)
    return path


@pytest.fixture()
def work_dirs(tmp_path):
    root = tmp_path / 'work_dirs'
    # CoAE, COCO splits 1-4, recorded source (seen 41..44, unseen 21..24;
    # query-blind and gain on split 1 only).
    for i in range(1, 5):
        values = {'AP50': 0.30, 'seen_AP50': 0.40 + 0.01 * i,
                  'unseen_AP50': 0.20 + 0.01 * i}
        if i == 1:
            values.update(seen_blind_AP50=0.25, unseen_blind_AP50=0.15,
                          seen_gain=0.16, unseen_gain=0.06)
        write_runs(str(root / f'coae_s{i}' / 'test' / '20260101_000000'),
                   values, source=dict(config=COAE.format(i),
                                       split=f'coco_split{i}',
                                       episode_classes='all'))
    # An older test of split 1 with other numbers: the newer one wins.
    old = write_runs(str(root / 'coae_s1_old' / '20250101_000000'),
                     {'seen_AP50': 0.10, 'unseen_AP50': 0.05},
                     source=dict(config=COAE.format(1), split='coco_split1'))
    past = time.time() - 3600
    os.utime(old, (past, past))
    # CoAE on VOC, an old-style json without source: name and split come
    # from the configs mmengine dumped into the work dir.
    voc = root / 'coae_voc' / 'test'
    dumped = ("test_dataloader = dict(dataset=dict(type='OneShotCocoDataset',"
              " split='voc', episode_classes='all'))\n")
    os.makedirs(voc / '20260101_000001' / 'vis_data')
    (voc / 'coae_r50-c4_8xb2-12e_voc.py').write_text(dumped)
    (voc / '20260101_000001' / 'vis_data' / 'config.py').write_text(dumped)
    write_runs(str(voc / '20260101_000001'),
               {'seen_AP50': 0.561, 'unseen_AP50': 0.612}, num_runs=3)
    # The entry config of BHRL (an alias of its COCO split 1 config),
    # tested on the unseen classes only.
    write_runs(str(root / 'bhrl' / '20260101_000002'), {'AP50': 0.25},
               source=dict(config='configs/bhrl_r50.py', split='coco_split1',
                           episode_classes='unseen'))
    # A quickstart run: own classes, nothing published.
    write_runs(str(root / 'quickstart' / '20260101_000003'),
               {'seen_AP50': 0.593, 'unseen_AP50': 0.541,
                'seen_gain': 0.305, 'unseen_gain': 0.251},
               source=dict(config='configs/quickstart/'
                           'siamese-faster-rcnn_r18-tiny_synthetic.py',
                           split=dict(unseen=['a', 'b']),
                           episode_classes='all'))
    return root


def run_collect(*args):
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.run(
        [sys.executable, 'tools/analysis/collect_results.py', *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def parse_markdown(text):
    lines = [ln for ln in text.splitlines() if ln.startswith('|')]
    head = [c.strip() for c in lines[0].strip('|').split('|')]
    rows = [dict(zip(head, (c.strip() for c in ln.strip('|').split('|'))))
            for ln in lines[2:]]
    return head, {(r['config'], r['data']): r for r in rows}


def test_table_numbers(work_dirs, tmp_path):
    out_md, out_csv = str(tmp_path / 't.md'), str(tmp_path / 't.csv')
    stdout = run_collect(str(work_dirs), '--out', out_md, '--csv', out_csv)
    with open(out_md) as f:
        table = f.read()
    assert table.split('\n\n')[0] in stdout
    head, rows = parse_markdown(table)
    assert head[:10] == ['method', 'config', 'data', 'draws', 'seen AP50',
                         'unseen AP50', 'published seen', 'published unseen',
                         'Δ seen', 'Δ unseen']
    assert {'query-blind seen', 'gain unseen'} <= set(head)

    family = 'coae_r50-c4_8xb2-12e'
    for i in range(1, 5):
        r = rows[(family, f'COCO split{i}')]
        assert r['method'] == 'CoAE' and r['draws'] == '5'
        assert r['seen AP50'] == f'{40 + i:.1f} ± 0.4'
        assert r['unseen AP50'] == f'{20 + i:.1f} ± 0.4'
        assert r['published seen'] == f'{COAE_SEEN[i - 1]:.1f}'
        assert r['published unseen'] == f'{COAE_UNSEEN[i - 1]:.1f}'
        assert r['Δ seen'] == f'{40 + i - COAE_SEEN[i - 1]:+.1f}'
        assert r['Δ unseen'] == f'{20 + i - COAE_UNSEEN[i - 1]:+.1f}'
    split1 = rows[(family, 'COCO split1')]
    assert split1['Δ seen'] == '-1.2' and split1['Δ unseen'] == '-2.4'
    assert split1['query-blind seen'] == '25.0 ± 0.4'
    assert split1['gain seen'] == '+16.0 ± 0.4'
    assert rows[(family, 'COCO split2')]['gain seen'] == '-'

    mean = rows[(family, 'COCO mean (4 splits)')]
    assert mean['seen AP50'] == '42.5 ± 0.2'  # sqrt(4 * 0.4^2) / 4
    assert mean['unseen AP50'] == '22.5 ± 0.2'
    assert mean['published seen'] == '40.9'  # (42.2+40.2+39.9+41.3) / 4
    assert mean['published unseen'] == '22.0'  # 21.975
    assert mean['Δ seen'] == '+1.6' and mean['Δ unseen'] == '+0.5'

    voc = rows[(family, 'VOC')]
    assert voc['draws'] == '3'
    assert voc['seen AP50'] == '56.1 ± 0.4'
    assert voc['published seen'] == '55.1' and voc['published unseen'] == \
        '63.8'
    assert voc['Δ seen'] == '+1.0' and voc['Δ unseen'] == '-2.6'

    bhrl = rows[('bhrl_r50-fpn_8xb2-9e', 'COCO split1')]
    assert bhrl['method'] == 'BHRL'
    assert bhrl['seen AP50'] == '-' and bhrl['unseen AP50'] == '25.0 ± 0.4'
    assert bhrl['published unseen'] == '26.1' and bhrl['Δ unseen'] == '-1.1'
    assert bhrl['Δ seen'] == '-'
    assert ('bhrl_r50-fpn_8xb2-9e', 'COCO mean (4 splits)') not in rows

    quick = rows[('siamese-faster-rcnn_r18-tiny_synthetic', 'custom')]
    assert quick['seen AP50'] == '59.3 ± 0.4'
    assert quick['published seen'] == '-' and quick['Δ seen'] == '-'
    assert quick['gain unseen'] == '+25.1 ± 0.4'

    # Row order: per family, splits 1-4, the mean, VOC.
    order = [(r['config'], r['data']) for r in parse_markdown(table)[1]
             .values()]
    assert order[:6] == [(family, f'COCO split{i}') for i in range(1, 5)] + [
        (family, 'COCO mean (4 splits)'), (family, 'VOC')]

    with open(out_csv) as f:
        records = {(r['config'], r['data']): r for r in csv.DictReader(f)}
    r = records[(family, 'COCO split3')]
    assert float(r['seen_AP50']) == pytest.approx(43.0)
    assert float(r['seen_AP50_std']) == pytest.approx(0.4)
    assert float(r['published_unseen_AP50']) == pytest.approx(20.5)
    assert float(r['delta_unseen']) == pytest.approx(2.5)
    assert 'coae_s3' in r['sources']
    assert float(records[(family, 'COCO mean (4 splits)')][
        'delta_unseen']) == pytest.approx(22.5 - 21.975)


def test_single_work_dir_and_file(work_dirs):
    stdout = run_collect(str(work_dirs / 'coae_voc'),
                         str(work_dirs / 'coae_s2' / 'test' /
                             '20260101_000000' / 'oneshot_runs.json'))
    _, rows = parse_markdown(stdout)
    assert set(rows) == {('coae_r50-c4_8xb2-12e', 'VOC'),
                         ('coae_r50-c4_8xb2-12e', 'COCO split2')}


def test_no_runs_is_an_error(tmp_path):
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.run(
        [sys.executable, 'tools/analysis/collect_results.py',
         str(tmp_path)], cwd=REPO, env=env, capture_output=True, text=True)
    assert proc.returncode != 0
    assert 'No oneshot_runs.json under' in proc.stderr

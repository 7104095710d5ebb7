"""tools/analysis/demo_precision.py counts the demo's confident detections
on the query's class, on other classes and elsewhere."""
import json
import os.path as osp
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(REPO, 'tools', 'analysis'))

from demo_precision import demo_precision  # noqa: E402

COCO = dict(
    categories=[dict(id=1, name='star'), dict(id=2, name='ring')],
    images=[dict(id=1, file_name='a.png'), dict(id=2, file_name='b.png')],
    annotations=[
        dict(id=1, image_id=1, category_id=1, bbox=[0, 0, 20, 20]),
        dict(id=2, image_id=1, category_id=2, bbox=[50, 50, 20, 20]),
        dict(id=3, image_id=2, category_id=1, bbox=[10, 10, 20, 20]),
    ])


def detections(per_target):
    return dict(queries=[dict(name='q')], results=[
        dict(target=f'/some/dir/{name}', detections=[dict(
            query='q', bboxes=[d[0] for d in dets],
            scores=[d[1] for d in dets])])
        for name, dets in per_target])


def test_counts_by_where_the_box_lies():
    dets = detections([
        ('a.png', [([0, 0, 20, 20], 0.9),      # the star: correct
                   ([1, 1, 21, 21], 0.8),      # duplicate: elsewhere
                   ([50, 50, 70, 70], 0.7),    # on the ring
                   ([0, 0, 20, 20], 0.4)]),    # below the threshold
        ('b.png', [([100, 100, 120, 120], 0.6)]),  # background
    ])
    r = demo_precision(dets, COCO, 'star')
    assert (r['detections'], r['correct'], r['other_class'],
            r['elsewhere']) == (4, 1, 1, 2)
    assert r['precision'] == pytest.approx(0.25)
    assert r['recall'] == pytest.approx(0.5)  # the star of b.png is missed
    assert r['targets'] == 2 and r['gt'] == 2
    assert r['confused_with'] == {'ring': 1}  # what the query is taken for
    assert demo_precision(dets, COCO, 'star', score_thr=0.75)[
        'precision'] == pytest.approx(0.5)


def test_bad_input_is_named(tmp_path):
    dets = detections([('c.png', [])])
    with pytest.raises(ValueError, match='c.png'):
        demo_precision(dets, COCO, 'star')
    with pytest.raises(ValueError, match='moon'):
        demo_precision(dets, COCO, 'moon')
    with pytest.raises(ValueError, match='other'):
        demo_precision(dets, COCO, 'star', query='other')


def test_cli_prints_precision(tmp_path):
    d, c = tmp_path / 'd.json', tmp_path / 'c.json'
    d.write_text(json.dumps(detections([('a.png', [([0, 0, 20, 20], 0.9)])])))
    c.write_text(json.dumps(COCO))
    out = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools/analysis/demo_precision.py'),
         str(d), str(c), '--class', 'star'],
        capture_output=True, text=True, check=True).stdout
    assert 'precision 100.0 %' in out and '1 on star' in out

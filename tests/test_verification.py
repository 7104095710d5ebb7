"""Query verification (oneshot/apis/verification.py): a box's similarity
equals an independent encoding of its crop, the query's own box scores 1,
the threshold keeps exactly the boxes at or above it, nothing else of the
result changes; the demo records it; the calibration tool's table equals
a hand computation."""
import json
import os.path as osp
import sys

import cv2
import numpy as np
import pytest
import torch
from quickstart_utils import REPO, random_model_on_synthetic

from oneshot.apis import OneShotInferencer, Query
from oneshot.apis.batching import stack_patches
from oneshot.apis.verification import (clip_box, pooled_embedding,
                                       read_verify_thr)

sys.path.insert(0, osp.join(REPO, 'tools', 'analysis'))
from calibrate_verification import (class_queries, classes_to_find,  # noqa
                                    threshold_table)


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    root, cfg, ckpt = random_model_on_synthetic(
        tmp_path_factory.mktemp('verification'))
    with open(osp.join(root, 'annotations/val.json')) as f:
        coco = json.load(f)
    return root, cfg, ckpt, coco


def _query(root, coco, k=0):
    a = coco['annotations'][k]
    x, y, w, h = a['bbox']
    img = {im['id']: im['file_name'] for im in coco['images']}[a['image_id']]
    return osp.join(root, 'val', img), [x, y, x + w, y + h]


def test_pooled_embedding_is_normalised_level_means():
    feats = (torch.randn(3, 4, 5, 5), torch.randn(3, 2, 2, 3))
    emb = pooled_embedding(feats)
    expected = torch.cat([feats[0].mean((2, 3)), feats[1].mean((2, 3))], 1)
    expected = expected / expected.norm(dim=1, keepdim=True)
    torch.testing.assert_close(emb, expected)
    assert clip_box(np.array([-5., 3., 2., 3.]), 10, 8) == [0., 3., 2., 4.]


def test_similarity_equals_independent_encoding(setup):
    root, cfg, ckpt, coco = setup
    inf = OneShotInferencer(cfg, ckpt, device='cpu')
    path, box = _query(root, coco)
    target = osp.join(root, 'val', coco['images'][1]['file_name'])
    plain = inf(target, [Query(path, box)], score_thr=0.0)[0]
    checked = inf(target, [Query(path, box)], score_thr=0.0,
                  verify_thr=-2.0)[0]
    p, c = plain['detections'][0], checked['detections'][0]
    assert 'similarity' not in p and len(p['scores']) > 3
    np.testing.assert_array_equal(p['scores'], c['scores'])
    np.testing.assert_array_equal(p['bboxes'], c['bboxes'])
    # Independent: crop each box, encode it like a query, compare.
    img = cv2.imread(target)
    enc = inf.encode([Query(path, box)])
    q = pooled_embedding(enc.feats[0])[0]
    model = inf.model
    for b, sim in list(zip(c['bboxes'], c['similarity']))[:5]:
        x1, y1, x2, y2 = clip_box(b, img.shape[1], img.shape[0])
        patch = inf.pipeline.crop_query(Query(img, [x1, y1, x2, y2]), 'x')
        with torch.no_grad():
            feats = model.extract_query_feat(
                model.data_preprocessor.preprocess_queries(
                    [stack_patches([patch])]))
        expected = float(pooled_embedding(feats)[0] @ q)
        assert abs(expected - float(sim)) < 1e-5
    # The query's own box in its own image is the query itself.
    own = inf.box_similarities(cv2.imread(path), np.array([box], float),
                               q)
    assert abs(float(own[0]) - 1.0) < 1e-5


def test_threshold_keeps_exactly_the_boxes_at_or_above_it(setup):
    root, cfg, ckpt, coco = setup
    inf = OneShotInferencer(cfg, ckpt, device='cpu')
    queries = [Query(*_query(root, coco, k)) for k in (0, 3)]
    target = osp.join(root, 'val', coco['images'][2]['file_name'])
    everything = inf(target, queries, verify_thr=-2.0)[0]['detections']
    thr = float(np.median(everything[0]['similarity']))
    kept = inf(target, queries, verify_thr=thr)[0]['detections']
    for all_, some in zip(everything, kept):
        mask = all_['similarity'] >= thr
        np.testing.assert_array_equal(some['scores'], all_['scores'][mask])
        np.testing.assert_array_equal(some['bboxes'], all_['bboxes'][mask])
        assert (some['similarity'] >= thr).all()
    assert 0 < len(kept[0]['scores']) < len(everything[0]['scores'])
    # One query at a time gives the same as both together.
    alone = inf(target, queries[1:], verify_thr=thr)[0]['detections'][0]
    np.testing.assert_allclose(alone['similarity'], kept[1]['similarity'],
                               atol=1e-5)


def test_demo_records_similarity(setup, tmp_path):
    root, cfg, ckpt, coco = setup
    cfg_file = str(tmp_path / 'cfg.py')
    cfg.dump(cfg_file)
    path, box = _query(root, coco)
    # The threshold as tools/analysis/calibrate_verification.py --out
    # writes it (what tools/quickstart.sh hands to the demo).
    thr_file = str(tmp_path / 'verification.json')
    with open(thr_file, 'w') as f:
        json.dump(dict(verify_thr=0.5), f)
    sys.path.insert(0, osp.join(REPO, 'tools'))
    import demo
    demo.main([osp.join(root, 'val'), '--query', path, '--query-box',
               ','.join(str(v) for v in box), '--config', cfg_file,
               '--checkpoint', ckpt, '--out', str(tmp_path / 'out'),
               '--score-thr', '0.0', '--verify-thr', thr_file])
    with open(tmp_path / 'out' / 'detections.json') as f:
        out = json.load(f)
    assert out['verify_thr'] == 0.5
    dets = [d for r in out['results'] for d in r['detections']]
    assert all(len(d['similarity']) == len(d['scores']) for d in dets)
    assert all(s >= 0.5 for d in dets for s in d['similarity'])


def test_calibration_table_equals_hand_computation():
    coco = dict(
        categories=[dict(id=1, name='a'), dict(id=2, name='b')],
        images=[dict(id=i, file_name=f'{i}.png') for i in (1, 2, 3)],
        annotations=[
            dict(id=1, image_id=1, category_id=1, bbox=[0, 0, 10, 10]),
            dict(id=2, image_id=2, category_id=1, bbox=[0, 0, 10, 10]),
            dict(id=3, image_id=2, category_id=2, bbox=[20, 20, 10, 10]),
            dict(id=4, image_id=3, category_id=2, bbox=[0, 0, 10, 10])])
    assert class_queries(coco, ['a', 'b']) == {
        'a': (1, '1.png', [0, 0, 10, 10]), 'b': (2, '2.png', [20, 20, 30, 30])}

    def det(boxes, scores, sims):
        return dict(query='q', bboxes=boxes, scores=scores, similarity=sims)
    # Query a (from image 1) on images 2 and 3: right on the a of image 2
    # (similarity 0.9), wrong on the b of image 2 (0.7) and of image 3
    # (0.95). Query b (from image 2) on images 1 and 3: right on image 3
    # (0.8), wrong on the a of image 1 (0.6).
    per_class = {
        'a': dict(queries=[dict(name='q')], results=[
            dict(target='2.png', detections=[det(
                [[0, 0, 10, 10], [20, 20, 30, 30]], [0.9, 0.8], [0.9, 0.7])]),
            dict(target='3.png', detections=[det(
                [[0, 0, 10, 10]], [0.7], [0.95])])]),
        'b': dict(queries=[dict(name='q')], results=[
            dict(target='1.png', detections=[det(
                [[0, 0, 10, 10]], [0.6], [0.6])]),
            dict(target='3.png', detections=[det(
                [[0, 0, 10, 10]], [0.99], [0.8])])])}
    rows = threshold_table(per_class, coco, thresholds=[0.75, 0.85, 0.92])
    got = {r['thr']: (round(r['precision'], 4), round(r['recall'], 4))
           for r in rows}
    # No check: a 1/3, b 1/2 -> precision 0.4167, recall 1.
    assert got[None] == (round((1 / 3 + 1 / 2) / 2, 4), 1.0)
    # 0.75: a keeps 0.9 (right) and 0.95 (wrong) -> 1/2; b keeps 0.8 -> 1.
    assert got[0.75] == (0.75, 1.0)
    # 0.85: a 1/2, b nothing (precision 1, recall 0).
    assert got[0.85] == (0.75, 0.5)
    # 0.92: a keeps only the wrong 0.95 -> 0; b nothing.
    assert got[0.92] == (0.5, 0.0)
    assert max(rows[1:], key=lambda r: r['f1'])['thr'] == 0.75


def test_visualize_episodes_verified(setup, tmp_path):
    """The picture tool draws the verified detections (runs end to end on
    the config's test episodes; the title says it)."""
    import subprocess
    root, cfg, ckpt, coco = setup
    cfg_file = str(tmp_path / 'cfg.py')
    cfg.dump(cfg_file)
    out = str(tmp_path / 'episodes.png')
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools/visualize_episodes.py'),
         cfg_file, ckpt, '--out', out, '--num', '2', '--verify-thr', '0.9'],
        capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'saved 2 episodes' in proc.stdout
    assert cv2.imread(out).shape[2] == 3


def test_read_verify_thr_number_or_calibration_json(tmp_path):
    """``--verify-thr`` takes a number or the calibration tool's JSON; a
    file without a numeric threshold, or neither, is an error naming it."""
    assert read_verify_thr('0.95') == 0.95
    good = tmp_path / 'verification.json'
    good.write_text(json.dumps(dict(verify_thr=0.87, seen=[])))
    assert read_verify_thr(str(good)) == 0.87
    for name, text in (('nothr.json', '{"seen": []}'),
                       ('text.json', '{"verify_thr": "high"}'),
                       ('broken.json', '{"verify_thr": ')):
        bad = tmp_path / name
        bad.write_text(text)
        with pytest.raises(ValueError, match=name):
            read_verify_thr(str(bad))
    with pytest.raises(ValueError, match='neither a number nor'):
        read_verify_thr(str(tmp_path / 'missing.json'))


def test_calibration_leaves_out_classes_with_nothing_to_find():
    """A class whose boxes all lie in its query's image has no recall; it
    is left out instead of turning every mean into NaN."""
    coco = dict(
        categories=[dict(id=1, name='a'), dict(id=2, name='b'),
                    dict(id=3, name='c')],
        images=[dict(id=i, file_name=f'{i}.png') for i in (1, 2)],
        annotations=[
            dict(id=1, image_id=1, category_id=1, bbox=[0, 0, 10, 10]),
            dict(id=2, image_id=2, category_id=1, bbox=[0, 0, 10, 10]),
            dict(id=3, image_id=2, category_id=2, bbox=[20, 20, 10, 10]),
            dict(id=4, image_id=2, category_id=2, bbox=[40, 40, 10, 10])])
    assert classes_to_find(coco, ['a', 'b', 'c']) == ['a']

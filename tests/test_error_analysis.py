"""Error analysis of one-shot detections: every category on hand-built
episodes with counts worked out by hand, the precedence rules, negative
targets, the confusion list, the seen/unseen split, the picture, and the
CLI end to end on a tiny synthetic set with a randomly initialised
quickstart model."""
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest
from quickstart_utils import (QUICKSTART_CFG, REPO, as_cli_options,
                              data_overrides, make_synthetic)

from oneshot.evaluation.error_analysis import (
    BG, CAPTION_H, HEADER_H, MARGIN, TITLE_H, ErrorAnalysisRecorder,
    analyze_errors, box_iof, box_iou, classify_episode, draw_confusions,
    summary_text)

CLASSES = ('a', 'b', 'c', 'd')
SEEN, UNSEEN = ('a', 'b', 'c'), ('d', )
A, B, C, D = range(4)


def record(label, preds=(), gt=(), crowd=(), others=(), negative=False,
           episode_id=0):
    """An episode record as ``OneShotMetric`` keeps it; ``preds`` are
    ``(box, score)`` pairs and ``others`` ``(box, label)`` pairs."""
    return dict(
        episode_id=episode_id, img_id=episode_id, label=label, run=0,
        negative=negative, img_path=None, query_img_paths=[],
        query_bboxes=[],
        pred_bboxes=np.array([p[0] for p in preds], float).reshape(-1, 4),
        pred_scores=np.array([p[1] for p in preds], float),
        gt_bboxes=np.array(gt, float).reshape(-1, 4),
        ignored_bboxes=np.array(crowd, float).reshape(-1, 4),
        other_gt_bboxes=np.array([o[0] for o in others],
                                 float).reshape(-1, 4),
        other_gt_labels=np.array([o[1] for o in others], np.int64))


def hand_records():
    """Six episodes; the category of every confident detection (score >=
    0.5, IoU >= 0.5) is written beside it, worked out by hand."""
    ep0 = record(  # class a, positive
        A, gt=[[0, 0, 20, 20], [100, 0, 120, 20]],
        crowd=[[200, 200, 260, 260]],
        others=[([0, 100, 20, 120], B), ([100, 100, 120, 120], C)],
        preds=[
            ([300, 300, 320, 320], 0.95),  # background (touches nothing)
            ([0, 0, 20, 20], 0.9),         # TP (gt 0)
            ([1, 1, 21, 21], 0.8),         # duplicate: IoU 361/439 gt 0
            ([0, 100, 20, 120], 0.7),      # wrong class, taken for b
            ([100, 100, 106, 120], 0.65),  # poor box on c: IoU 120/400
            ([100, 0, 108, 20], 0.6),      # poor box on a: IoU 160/400
            ([205, 205, 225, 225], 0.55),  # ignored: IoF 1 with crowd
            ([50, 50, 70, 70], 0.4),       # below the score threshold
            ([100, 0, 120, 20], 0.3)],     # below the score threshold
        episode_id=0)
    ep1 = record(  # class a, positive: TP and duplicate beat wrong class
        A, gt=[[0, 0, 20, 20]],
        others=[([0, 0, 20, 24], B), ([200, 0, 220, 20], B)],
        preds=[
            ([0, 0, 20, 22], 0.9),     # TP (IoU 0.91; 0.92 with the b box)
            ([0, 0, 20, 23], 0.8),     # duplicate (IoU 0.87 with gt 0)
            ([200, 0, 220, 20], 0.7)],  # wrong class, taken for b
        episode_id=1)
    ep2 = record(  # class d (unseen): wrong class beats poor box
        D, gt=[[0, 0, 40, 40]], others=[([20, 0, 60, 40], A)],
        # IoU 0.875 with the a box, 600/2400 = 0.25 with the d box.
        preds=[([25, 0, 60, 40], 0.9)], episode_id=2)
    ep3 = record(  # class b, negative target
        B, negative=True, others=[([0, 0, 20, 20], C)],
        preds=[
            ([0, 0, 20, 20], 0.9),       # wrong class, taken for c
            ([0, 0, 8, 20], 0.8),        # poor box on c: IoU 160/400
            ([100, 100, 120, 120], 0.7),  # background
            ([50, 50, 60, 60], 0.2)],    # below the score threshold
        episode_id=3)
    ep4 = record(B, negative=True, episode_id=4)  # nothing detected
    ep5 = record(D, gt=[[0, 0, 20, 20]], episode_id=5)  # a miss
    return [ep0, ep1, ep2, ep3, ep4, ep5]


def analyze(records, **kwargs):
    return analyze_errors(records, CLASSES, seen_classes=SEEN,
                          unseen_classes=UNSEEN, **kwargs)


def test_every_category_counted_as_worked_out_by_hand():
    res = analyze(hand_records())
    o = res['overall']
    # Confident detections: 7 (ep0) + 3 (ep1) + 1 (ep2) + 3 (ep3) = 14.
    assert o['episodes'] == 6 and o['negative_episodes'] == 2
    assert o['num_gt'] == 5
    assert o['detections'] == 14
    assert o['true_positives'] == 2 and o['ignored'] == 1
    assert o['fp_counts'] == dict(wrong_class=4, poor_box=3, background=2,
                                  duplicate=2)
    assert o['false_positives'] == 11
    assert o['fp_shares']['wrong_class'] == pytest.approx(4 / 11)
    assert sum(o['fp_shares'].values()) == pytest.approx(1.0)
    assert o['poor_box_on'] == dict(query_class=1, other_class=2)
    assert o['precision'] == pytest.approx(2 / 13)  # ignored left out
    assert o['recall'] == pytest.approx(2 / 5)
    # Negative targets: 3 confident detections on ep3, none on ep4.
    assert o['false_alarms_per_negative'] == pytest.approx(1.5)
    assert o['negative_fp_counts'] == dict(wrong_class=1, poor_box=1,
                                           background=1, duplicate=0)


def test_seen_unseen_split_and_per_class_rows():
    res = analyze(hand_records())
    seen, unseen = res['seen'], res['unseen']
    assert seen['episodes'] == 4 and unseen['episodes'] == 2
    assert seen['detections'] == 13 and unseen['detections'] == 1
    assert seen['fp_counts'] == dict(wrong_class=3, poor_box=3,
                                     background=2, duplicate=2)
    assert unseen['fp_counts'] == dict(wrong_class=1, poor_box=0,
                                       background=0, duplicate=0)
    assert unseen['recall'] == 0.0 and unseen['precision'] == 0.0
    assert unseen['false_alarms_per_negative'] is None  # no negatives
    assert seen['false_alarms_per_negative'] == pytest.approx(1.5)

    rows = {r['class']: r for r in res['per_class']}
    assert [r['class'] for r in res['per_class']] == ['a', 'b', 'd']
    assert rows['a']['split'] == 'seen' and rows['d']['split'] == 'unseen'
    a = rows['a']
    assert (a['detections'], a['true_positives'], a['false_positives']) \
        == (10, 2, 7)
    assert a['precision'] == pytest.approx(2 / 9)
    assert a['recall'] == pytest.approx(2 / 3)
    assert a['most_confused_with'] == 'b'
    b = rows['b']
    assert b['negative_episodes'] == 2 and b['recall'] is None
    assert b['false_alarms_per_negative'] == pytest.approx(1.5)
    assert b['precision'] == 0.0
    assert rows['d']['most_confused_with'] == 'a'

    # A class in neither split only counts overall.
    res = analyze_errors(hand_records(), CLASSES)
    assert res['seen']['episodes'] == res['unseen']['episodes'] == 0
    assert res['seen']['precision'] is None
    assert res['per_class'][0]['split'] is None


def test_confusion_list():
    res = analyze(hand_records())
    conf = [(c['query_class'], c['detected_class'], c['count'])
            for c in res['confusions']]
    # By count, then query and detected class names.
    assert conf == [('a', 'b', 2), ('b', 'c', 1), ('d', 'a', 1)]
    shares = [c['share_of_query_class_fps'] for c in res['confusions']]
    assert shares == pytest.approx([2 / 7, 1 / 3, 1.0])
    ex = res['confusions'][0]['examples']
    assert [(e['record_index'], e['score']) for e in ex] == [(0, 0.7),
                                                             (1, 0.7)]
    assert ex[0]['bbox'] == [0, 100, 20, 120]
    assert ex[0]['iou'] == pytest.approx(1.0)
    assert len(analyze(hand_records(), max_examples=1)['confusions'][0][
        'examples']) == 1


def test_precedence_rules():
    # Each detection goes to the best-IoU unmatched box, not the first.
    dets = classify_episode(record(
        A, gt=[[0, 0, 20, 20], [5, 0, 25, 20]],
        preds=[([5, 0, 25, 20], 0.9), ([0, 0, 14, 20], 0.8)]))
    assert [d['category'] for d in dets] == ['true_positive'] * 2
    # Crowd: overlap over the detection's area; it beats duplicate.
    dets = classify_episode(record(
        A, gt=[[0, 0, 20, 20]], crowd=[[0, 0, 100, 100]],
        preds=[([0, 0, 20, 20], 0.9), ([0, 0, 20, 20], 0.8)]))
    assert [d['category'] for d in dets] == ['true_positive', 'ignored']
    # Wrong class takes the best-overlapping other box's class.
    dets = classify_episode(record(
        A, others=[([0, 0, 20, 20], B), ([0, 0, 20, 22], C)],
        preds=[([0, 0, 20, 22], 0.9)]))
    assert dets[0]['category'] == 'wrong_class'
    assert dets[0]['detected_label'] == C
    # A loose overlap with the query class beats one with another class.
    dets = classify_episode(record(
        A, gt=[[0, 0, 20, 20]], others=[([0, 0, 20, 20], B)],
        preds=[([0, 0, 8, 20], 0.9)]))
    assert (dets[0]['category'], dets[0]['poor_box_on']) == (
        'poor_box', 'query_class')
    # Below LOOSE_IOU (0.1) everywhere: background; IoU 0.1 exactly: poor.
    dets = classify_episode(record(
        A, gt=[[0, 0, 20, 20]],
        preds=[([0, 0, 20, 1.9], 0.9), ([0, 0, 20, 2], 0.8)]))
    assert [d['category'] for d in dets] == ['background', 'poor_box']
    # Thresholds are inclusive; scores are ranked high to low.
    dets = classify_episode(record(
        A, gt=[[0, 0, 20, 20]], preds=[([0, 0, 10, 20], 0.5),
                                       ([50, 50, 60, 60], 0.7)]))
    assert [(d['index'], d['category']) for d in dets] == [
        (1, 'background'), (0, 'true_positive')]
    assert classify_episode(record(A, preds=[([0, 0, 1, 1], 0.49)])) == []


def test_box_overlaps():
    a = [[0, 0, 10, 10]]
    b = [[5, 0, 15, 10], [0, 0, 100, 100], [20, 20, 20, 30]]
    np.testing.assert_allclose(box_iou(a, b), [[50 / 150, 0.01, 0.0]])
    np.testing.assert_allclose(box_iof(a, b), [[0.5, 1.0, 0.0]])
    assert box_iou(np.zeros((0, 4)), b).shape == (0, 3)


def test_output_is_json_serialisable_and_summarised():
    res = analyze(hand_records())
    assert json.loads(json.dumps(res)) == res
    assert res['settings'] == dict(
        score_thr=0.5, iou_thr=0.5, loose_iou=0.1,
        categories=['wrong_class', 'poor_box', 'background', 'duplicate'])
    text = summary_text(res)
    assert 'confident detections: 14' in text
    assert 'wrong class 4 (36.4%)' in text
    assert 'false alarms per negative target 1.50' in text
    assert 'a -> b 2' in text


def test_bad_input_names_record_and_key():
    recs = hand_records()
    del recs[2]['pred_scores']
    with pytest.raises(KeyError, match=r"record 2 \(episode_id 2\).*"
                       "pred_scores"):
        analyze(recs)
    recs = hand_records()
    recs[1]['label'] = 7
    with pytest.raises(ValueError, match='record 1.*label 7'):
        analyze(recs)
    recs = hand_records()
    recs[0]['other_gt_labels'] = np.array([1])
    with pytest.raises(ValueError, match='record 0.*other_gt_labels'):
        analyze(recs)
    with pytest.raises(ValueError, match='no episode record'):
        analyze([])
    with pytest.raises(ValueError, match='iou_thr'):
        analyze(hand_records(), iou_thr=0.05)


def test_recorder_keeps_records_and_returns_no_metric():
    metric = ErrorAnalysisRecorder()
    metric.dataset_meta = dict(classes=CLASSES)
    recs = hand_records()
    assert metric.compute_metrics(recs) == {}
    assert metric.records == recs


# ----------------------------------------------------------------------
# The picture
# ----------------------------------------------------------------------
RED, GREEN = (0, 0, 255), (0, 255, 0)


def with_images(records, root):
    """Give every record a query image (a red square at its query box) and
    a target image (the other-class boxes filled green)."""
    query = np.full((80, 80, 3), 128, np.uint8)
    query[10:50, 10:50] = RED
    q_path = osp.join(root, 'query.png')
    cv2.imwrite(q_path, query)
    for i, r in enumerate(records):
        img = np.full((400, 400, 3), 128, np.uint8)
        for x1, y1, x2, y2 in r['other_gt_bboxes'].astype(int):
            img[y1:y2, x1:x2] = GREEN
        r['img_path'] = osp.join(root, f'target{i}.png')
        cv2.imwrite(r['img_path'], img)
        r['query_img_paths'] = [q_path]
        r['query_bboxes'] = [[10.0, 10.0, 50.0, 50.0]]
    return records


def test_draw_confusions_layout(tmp_path):
    recs = with_images(hand_records(), str(tmp_path))
    res = analyze(recs)
    out = str(tmp_path / 'sub' / 'confusions.png')
    tile = 64
    img = draw_confusions(recs, res, CLASSES, out, top_k=2, tile=tile,
                          max_examples=3)
    written = cv2.imread(out)
    assert written is not None and np.array_equal(written, img)
    # Two rows (top_k) of a header, tiles and captions; 1 + 3 columns.
    row_h = HEADER_H + tile + CAPTION_H + MARGIN
    assert img.shape == (TITLE_H + 2 * row_h + MARGIN,
                         MARGIN + 4 * (tile + MARGIN), 3)

    def tile_at(row, col):
        y = TITLE_H + row * row_h + HEADER_H
        x = MARGIN + col * (tile + MARGIN)
        return img[y:y + tile, x:x + tile]

    c = tile // 2
    # Row 0 (a -> b, 2 examples): query red, both examples green, the
    # third example column empty.
    assert tuple(tile_at(0, 0)[c, c]) == RED
    assert tuple(tile_at(0, 1)[c, c]) == GREEN
    assert tuple(tile_at(0, 2)[c, c]) == GREEN
    assert (tile_at(0, 3) == BG).all()
    # Row 1 (b -> c, 1 example).
    assert tuple(tile_at(1, 1)[c, c]) == GREEN
    assert (tile_at(1, 2) == BG).all()
    # The detection is outlined in red in its tile.
    assert (tile_at(0, 1) == RED).all(-1).any()

    # Without confusions a single "none" row is drawn.
    none = analyze([record(A, gt=[[0, 0, 20, 20]])])
    img = draw_confusions([], none, CLASSES, str(tmp_path / 'n.png'),
                          tile=tile, max_examples=3)
    assert img.shape[0] == TITLE_H + row_h + MARGIN

    # A missing image is an error naming it.
    os.remove(recs[1]['img_path'])
    with pytest.raises(FileNotFoundError, match='target1.png'):
        draw_confusions(recs, res, CLASSES, out)


# ----------------------------------------------------------------------
# The CLI
# ----------------------------------------------------------------------
def load_cli():
    spec = importlib.util.spec_from_file_location(
        'analyze_errors_cli', osp.join(REPO, 'tools/analysis/'
                                       'analyze_errors.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_config_and_bad_input(tmp_path):
    cli = load_cli()
    ckpt = tmp_path / 'fake.pth'
    ckpt.write_bytes(b'')
    args = cli.parse_args([QUICKSTART_CFG, str(ckpt), '--run', '3',
                           '--num-negatives', '2', '--work-dir',
                           str(tmp_path)])
    cfg = cli.prepare_cfg(args)
    assert cfg.test_cfg == dict(type='TestLoop', fp16=False)
    assert cfg.test_dataloader.dataset.run == 3
    assert cfg.test_dataloader.dataset.num_negatives == 2
    assert cfg.test_evaluator[-1] == dict(type='ErrorAnalysisRecorder')
    assert cfg.test_evaluator[0]['type'] == 'OneShotMetric'
    assert cfg.load_from == str(ckpt)
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        cli.prepare_cfg(cli.parse_args([QUICKSTART_CFG, 'missing.pth']))
    with pytest.raises(ValueError, match='--run'):
        cli.prepare_cfg(cli.parse_args([QUICKSTART_CFG, str(ckpt),
                                        '--run', '-1']))


@pytest.fixture(scope='module')
def random_checkpoint(tmp_path_factory):
    """A tiny synthetic val set and a randomly initialised quickstart
    model saved as a checkpoint."""
    import torch
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    import oneshot  # noqa: F401
    root = str(tmp_path_factory.mktemp('errors_data'))
    make_synthetic(root, num_train=0, num_val=8)
    cfg = Config.fromfile(QUICKSTART_CFG)
    with DefaultScope.overwrite_default_scope('mmdet'):
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
        model.init_weights()
    path = osp.join(root, 'random.pth')
    torch.save(dict(state_dict=model.state_dict()), path)
    return root, path


def test_cli_end_to_end(random_checkpoint, tmp_path):
    root, ckpt = random_checkpoint
    out_dir = str(tmp_path / 'errors')
    opts = {k: v for k, v in data_overrides(root).items()
            if k.startswith('test_dataloader')}
    cmd = [sys.executable, 'tools/analysis/analyze_errors.py',
           QUICKSTART_CFG, ckpt, '--run', '1', '--score-thr', '0.3',
           '--num-negatives', '1', '--work-dir', str(tmp_path / 'work'),
           '--out-dir', out_dir, '--cfg-options', *as_cli_options(opts)]
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1')
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert 'confident detections:' in out and 'most confused' in out
    with open(osp.join(out_dir, 'errors.json')) as f:
        res = json.load(f)
    assert res['settings']['run'] == 1
    assert res['settings']['num_negatives'] == 1
    o = res['overall']
    assert o['negative_episodes'] > 0 and o['episodes'] > o[
        'negative_episodes']
    assert o['detections'] == o['true_positives'] + o['ignored'] + o[
        'false_positives']
    assert o['false_positives'] == sum(o['fp_counts'].values())
    img = cv2.imread(osp.join(out_dir, 'confusions.png'))
    assert img is not None and img.shape[1] == MARGIN + 5 * (128 + MARGIN)

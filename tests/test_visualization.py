"""Drawing of one-shot results and the registered OneShotLocalVisualizer."""
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmdet.registry import VISUALIZERS
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

from oneshot.visualization import (OneShotLocalVisualizer,
                                   draw_oneshot_result, make_query_panel,
                                   make_result_grid)
from oneshot.visualization.drawing import (DET_COLOR, GT_COLOR, TITLE_HEIGHT,
                                           query_panel_width)


def _grey(h: int, w: int, value: int = 90) -> np.ndarray:
    return np.full((h, w, 3), value, np.uint8)


def _changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels that differ."""
    return np.any(a != b, axis=2)


def test_draw_oneshot_result_draws_boxes_scores_query_and_gt():
    target = _grey(400, 400)
    query = np.zeros((30, 50, 3), np.uint8)
    query[..., 2] = 255  # a red query patch
    out = draw_oneshot_result(
        target, [query], bboxes=np.array([[200., 220., 300., 330.],
                                          [10., 300., 60., 350.]]),
        scores=np.array([0.9, 0.1]), gt_bboxes=np.array([[250, 40, 350,
                                                          120]]),
        class_name='red-star', score_thr=0.3, min_side=320)
    # The query column (a quarter of the target's height) on the left,
    # the title strip on top, the target itself below and to the right.
    top, left = TITLE_HEIGHT, query_panel_width(400)
    assert left == 102
    assert out.shape == (top + 400, left + 400, 3) and out.dtype == np.uint8
    assert target.max() == 90 == target.min()  # input untouched
    drawn = out[top:, left:]
    diff = _changed(drawn, target)
    # The kept detection's outline is drawn in the detection colour ...
    assert (drawn[220, 200:300] == DET_COLOR).all()
    assert (drawn[220:330, 300] == DET_COLOR).all()
    assert not diff[240:310, 220:280].any()  # ... and its inside untouched.
    # The detection below score_thr is not drawn.
    assert not diff[300:350, 10:60][5:-5, 5:-5].any()
    assert not diff[351:400, 0:100].any()
    # Ground truth in its own colour.
    assert (drawn[40, 250:350] == GT_COLOR).all()
    # Nothing covers the target: its top-left corner, where the query
    # thumbnail used to be laid over it, is the target's own pixels.
    assert not diff[:150, :200].any()
    # The query thumbnail (red, white frame) heads the left column.
    side = 400 // 4
    assert (out[top + side // 2, side // 2] == (0, 0, 255)).all()
    assert (out[top, :side + 2] == 255).all()
    # The class name is written in the strip above.
    assert (out[:top] != 0).any()
    assert not (out[:top] != 0).all()


def test_draw_oneshot_result_upscales_small_targets_and_boxes():
    target = _grey(160, 120)
    out = draw_oneshot_result(target, [_grey(20, 20, 200)],
                              bboxes=np.array([[60., 80., 100., 150.]]),
                              scores=np.array([0.8]), min_side=240)
    left = query_panel_width(320)
    assert out.shape == (320, left + 240, 3)  # scale 2; no title strip
    assert (out[160, left + 120:left + 200] == DET_COLOR).all()


def test_draw_oneshot_result_rejects_mismatched_scores():
    with pytest.raises(ValueError, match='scores'):
        draw_oneshot_result(_grey(50, 50), [_grey(5, 5)],
                            np.zeros((2, 4)), np.zeros(3))
    with pytest.raises(ValueError, match='query'):
        draw_oneshot_result(_grey(50, 50), [], np.zeros((0, 4)),
                            np.zeros(0))


def test_make_result_grid_layout():
    a = _grey(10, 20, 0)
    b = _grey(15, 5, 50)
    c = _grey(4, 4, 100)
    grid = make_result_grid([a, b, c], ncols=2, pad=2)
    # Cells are 15 x 20; 2 rows x 2 columns.
    assert grid.shape == (2 * 17 + 2, 2 * 22 + 2, 3)
    assert grid.dtype == np.uint8
    assert (grid[2:12, 2:22] == 0).all()
    assert (grid[2:17, 24:29] == 50).all()
    assert (grid[19:23, 2:6] == 100).all()
    assert (grid[0] == 255).all() and (grid[-1, :] == 255).all()
    with pytest.raises(ValueError):
        make_result_grid([], 2)


def test_make_query_panel_shape():
    panel = make_query_panel([_grey(30, 40, 200)] * 2, height=160,
                             class_name='magenta-triangle')
    assert panel.shape == (160, 53, 3) and panel.dtype == np.uint8
    assert (panel[5:40, 5:40] == 200).all()


def _episode_sample(tmp_path, with_pred: bool = True) -> DetDataSample:
    """A data sample as PackOneShotInputs + the detector make it."""
    query_src = _grey(100, 100, 60)
    query_src[20:50, 30:70] = (255, 0, 0)  # blue in BGR
    path = osp.join(str(tmp_path), 'query.png')
    cv2.imwrite(path, query_src)
    sample = DetDataSample(metainfo=dict(
        img_id=7, img_path='/nonexistent/7.png', ori_shape=(120, 160),
        img_shape=(120, 160), episode_cat_id=12, episode_label=2, run=3,
        episode_id=5, query_img_paths=[path], query_img_ids=[9],
        query_bboxes=[[30., 20., 70., 50.]]))
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor([[20., 30., 60., 80.]]),
        labels=torch.tensor([0]))
    if with_pred:
        sample.pred_instances = InstanceData(
            bboxes=torch.tensor([[22., 31., 61., 79.], [100., 10., 150., 40.]]),
            scores=torch.tensor([0.9, 0.05]), labels=torch.tensor([2, 2]))
    return sample


def test_visualizer_add_datasample_writes_png_per_episode(tmp_path):
    vis = VISUALIZERS.build(dict(type='OneShotLocalVisualizer',
                                 name='vis_test_png'))
    assert isinstance(vis, OneShotLocalVisualizer)
    # RGB palette: class 0 red, class 2 (the episode's) blue.
    vis.dataset_meta = dict(classes=('a', 'b', 'blue-box', 'd'),
                            palette=[(255, 0, 0), (0, 255, 0), (0, 0, 255),
                                     (255, 255, 0)])
    image = _grey(120, 160, 100)  # RGB, as DetVisualizationHook loads it
    out_file = osp.join(str(tmp_path), 'show', '7.png')
    vis.add_datasample('test_img', image, _episode_sample(tmp_path),
                       out_file=out_file, pred_score_thr=0.3)
    written = osp.join(str(tmp_path), 'show', '7_cat12_run3.png')
    assert osp.isfile(written) and not osp.exists(out_file)
    drawn = cv2.imread(written)  # BGR
    # [query panel (clip(120 // 3, 48, 120) = 48 wide) | gt | prediction]
    assert drawn.shape == (120, 48 + 2 * 160, 3)
    # Query panel: the blue query patch (BGR file) on the left.
    assert (drawn[10:30, 5:40] == (255, 0, 0)).all()
    # Ground truth and prediction panels have boxes where the boxes are,
    # and the prediction under the threshold is not drawn.
    gt_panel = drawn[:, 48:208].astype(int)
    pred_panel = drawn[:, 208:].astype(int)
    plain = image[..., ::-1].astype(int)
    assert np.abs(gt_panel - plain)[30:80, 20:60].sum() > 0
    assert np.abs(pred_panel - plain)[31:79, 22:61].sum() > 0
    assert np.abs(pred_panel - plain)[15:35, 110:140].sum() == 0
    # The ground truth (label 0) is drawn as the episode's class (label 2,
    # blue), not as class 0 (red): the box edge is blue in the BGR file.
    edge = gt_panel[80, 25:55]
    assert (edge[:, 0] > edge[:, 2] + 50).all(), edge
    assert vis.get_image().shape == (120, 368, 3)


def test_visualizer_uses_given_query_and_keeps_file_name(tmp_path):
    vis = OneShotLocalVisualizer(name='vis_test_kwarg',
                                 episode_file_names=False)
    vis.dataset_meta = dict(classes=('a', 'b', 'c'))
    sample = _episode_sample(tmp_path, with_pred=False)
    sample.set_metainfo(dict(query_img_paths=['/nonexistent/q.png']))
    out_file = osp.join(str(tmp_path), 'plain.png')
    query = np.zeros((10, 10, 3), np.uint8)
    query[..., 1] = 255  # green
    vis.add_datasample('x', _grey(120, 160), sample, out_file=out_file,
                       query_imgs=[query])
    drawn = cv2.imread(out_file)
    assert drawn.shape == (120, 48 + 160, 3)
    assert (drawn[10:30, 5:40] == (0, 255, 0)).all()


def test_visualizer_names_missing_query_metainfo(tmp_path):
    vis = OneShotLocalVisualizer(name='vis_test_missing')
    sample = DetDataSample(metainfo=dict(episode_label=0))
    with pytest.raises(KeyError, match='query_img_paths'):
        vis.add_datasample('x', _grey(50, 50), sample,
                           out_file=osp.join(str(tmp_path), 'x.png'))


def _load_visualize_episodes():
    import importlib.util
    repo = osp.dirname(osp.dirname(osp.abspath(__file__)))
    spec = importlib.util.spec_from_file_location(
        'visualize_episodes_tool',
        osp.join(repo, 'tools', 'visualize_episodes.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Episodes:
    """get_data_info of a test set: (label, negative) per episode."""

    def __init__(self, episodes):
        self.episodes = episodes

    def __len__(self):
        return len(self.episodes)

    def get_data_info(self, i):
        label, negative = self.episodes[i]
        return dict(episode_label=label, negative=negative)


def test_pick_episodes_prefers_targets_that_hold_the_class():
    """The negative episode listed first for a class (as the test set
    orders them: an image's negatives follow its positives) is passed over
    for a positive one; a class with negatives only still gets its
    negative; one episode per class before a second of any class."""
    tool = _load_visualize_episodes()
    episodes = _Episodes([(0, True), (1, True), (0, False), (1, False),
                          (2, True), (0, False)])
    picks = tool.pick_episodes(episodes, 3)
    assert sorted(picks) == [2, 3, 4]
    assert tool.pick_episodes(episodes, 4)[-1] == 5  # 0's second positive

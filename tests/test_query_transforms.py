"""Query loading, square resizing, flipping and packing."""
import cv2
import numpy as np
import pytest
import torch

from oneshot.datasets.transforms import (LoadQueryPatches, PackOneShotInputs,
                                         ResizeQueryPatches)


@pytest.fixture
def source(tmp_path):
    img = np.zeros((60, 80, 3), np.uint8)
    img[10:30, 20:60] = (0, 0, 255)  # a 40x20 red box
    path = str(tmp_path / 'src.png')
    cv2.imwrite(path, img)
    return path


def query_info(path, bbox, ann_id=7):
    return dict(img_path=path, img_id=3, ann_id=ann_id, bbox=bbox)


def test_load_crops_the_box_with_optional_context(source):
    out = LoadQueryPatches()(dict(query_infos=[query_info(
        source, [20, 10, 60, 30])]))
    patch = out['query_imgs'][0]
    assert patch.shape == (20, 40, 3)
    assert (patch == (0, 0, 255)).all()
    assert out['query_ann_ids'] == [7] and out['query_img_ids'] == [3]
    out = LoadQueryPatches(context=0.5)(dict(query_infos=[query_info(
        source, [20, 10, 60, 30])]))
    assert out['query_imgs'][0].shape == (40, 80, 3)  # clipped at borders
    assert out['query_bboxes'] == [[0, 0, 80, 40]]


def test_load_rejects_degenerate_or_outside_boxes(source):
    with pytest.raises(ValueError, match='annotation 7'):
        LoadQueryPatches()(dict(query_infos=[query_info(
            source, [20, 10, 20, 30])]))
    with pytest.raises(ValueError, match='outside'):
        LoadQueryPatches()(dict(query_infos=[query_info(
            source, [200, 100, 240, 130])]))
    with pytest.raises(FileNotFoundError, match='annotation id 7'):
        LoadQueryPatches()(dict(query_infos=[query_info(
            source + '.missing', [20, 10, 60, 30])]))


def test_resize_keeps_ratio_and_centres():
    patch = np.full((20, 40, 3), 200, np.uint8)
    out = ResizeQueryPatches(size=32)(dict(query_imgs=[patch]))
    q = out['query_imgs'][0]
    assert q.shape == (32, 32, 3)
    rows = np.nonzero(q[:, :, 0].any(1))[0]
    assert (rows.min(), rows.max()) == (8, 23)  # 16 rows, centred
    out = ResizeQueryPatches(size=32, center=False)(dict(query_imgs=[patch]))
    rows = np.nonzero(out['query_imgs'][0][:, :, 0].any(1))[0]
    assert (rows.min(), rows.max()) == (0, 15)


def test_flip():
    patch = np.zeros((10, 10, 3), np.uint8)
    patch[:, :3] = 255
    out = ResizeQueryPatches(size=10, flip_prob=1.0)(dict(query_imgs=[patch]))
    assert out['query_flip'] == [True]
    assert (out['query_imgs'][0][:, -3:] == 255).all()
    out = ResizeQueryPatches(size=10)(dict(query_imgs=[patch]))
    assert out['query_flip'] == [False]
    assert (out['query_imgs'][0][:, :3] == 255).all()


def test_pack():
    results = dict(
        img=np.zeros((24, 32, 3), np.uint8), img_shape=(24, 32),
        ori_shape=(24, 32), img_id=1,
        gt_bboxes=np.array([[1, 2, 10, 12]], np.float32),
        gt_bboxes_labels=np.array([0]), gt_ignore_flags=np.array([False]),
        query_imgs=[np.ones((16, 16, 3), np.uint8)] * 2,
        episode_label=4, episode_cat_id=5, episode_id=0, run=2)
    packed = PackOneShotInputs()(results)
    assert packed['inputs']['img'].shape == (3, 24, 32)
    assert packed['inputs']['query'].shape == (2, 3, 16, 16)
    assert packed['inputs']['query'].dtype == torch.uint8
    sample = packed['data_samples']
    assert sample.episode_label == 4 and sample.run == 2
    assert sample.gt_instances.bboxes.shape == (1, 4)
    bad = dict(results, query_imgs=[np.ones((16, 16, 3), np.uint8),
                                    np.ones((8, 8, 3), np.uint8)])
    with pytest.raises(ValueError, match='ResizeQueryPatches'):
        PackOneShotInputs()(bad)

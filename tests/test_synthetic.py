"""The procedural synthetic one-shot datasets: determinism, COCO validity,
class balance of val, the seen/unseen splits, the dataset base configs and,
in the shape mode, that no class can be told by its colour."""
import json
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest
from mmengine.config import Config
from pycocotools.coco import COCO

from oneshot.datasets.synthetic import (COLORS, OUTLINES, PATTERNS,
                                        SHAPE_CLASSES, SHAPES,
                                        SYNTHETIC_CLASSES,
                                        generate_synthetic_dataset,
                                        synthetic_split)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.fixture(scope='module')
def dataset(tmp_path_factory) -> dict:
    """Colour mode: 64 x 64-class-balanced val images are enough for every
    class to occur (2-4 classes per image)."""
    root = str(tmp_path_factory.mktemp('synthetic'))
    paths = generate_synthetic_dataset(root, num_train=30, num_val=64,
                                       seed=0, mode='colour')
    return dict(root=root, **paths)


@pytest.fixture(scope='module')
def shape_dataset(tmp_path_factory) -> dict:
    """Shape mode (the default): 32 classes."""
    root = str(tmp_path_factory.mktemp('synthetic_shape'))
    paths = generate_synthetic_dataset(root, num_train=200, num_val=32,
                                       seed=0)
    return dict(root=root, **paths)


def _load(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def _pixels(img_dir: str) -> list:
    return [cv2.imread(osp.join(img_dir, n), cv2.IMREAD_UNCHANGED)
            for n in sorted(os.listdir(img_dir))]


def test_same_seed_same_json_and_pixels(dataset, tmp_path):
    again = generate_synthetic_dataset(str(tmp_path / 'b'), num_train=30,
                                       num_val=64, seed=0, mode='colour')
    for name in ('train', 'val'):
        assert _load(again[f'{name}_ann']) == _load(dataset[f'{name}_ann'])
        a = _pixels(dataset[f'{name}_img_dir'])
        b = _pixels(again[f'{name}_img_dir'])
        assert len(a) == len(b) > 0
        assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_different_seed_differs(dataset, tmp_path):
    other = generate_synthetic_dataset(str(tmp_path / 'c'), num_train=30,
                                       num_val=64, seed=1, mode='colour')
    a, b = _load(dataset['train_ann']), _load(other['train_ann'])
    assert a['annotations'] != b['annotations']
    assert not np.array_equal(_pixels(dataset['train_img_dir'])[0],
                              _pixels(other['train_img_dir'])[0])


def test_generation_leaves_global_rngs_alone(tmp_path):
    np.random.seed(123)
    expected = np.random.rand(3)
    np.random.seed(123)
    generate_synthetic_dataset(str(tmp_path), num_train=2, num_val=2)
    assert np.array_equal(np.random.rand(3), expected)


def test_coco_json_is_valid(dataset):
    for name in ('train', 'val'):
        coco = COCO(dataset[f'{name}_ann'])
        cats = coco.loadCats(coco.getCatIds())
        assert [c['id'] for c in cats] == list(range(1, 65))
        assert [c['name'] for c in cats] == SYNTHETIC_CLASSES
        assert len(coco.getImgIds()) == (30 if name == 'train' else 64)
        for img in coco.loadImgs(coco.getImgIds()):
            path = osp.join(dataset[f'{name}_img_dir'], img['file_name'])
            pixels = cv2.imread(path)
            assert pixels.shape == (img['height'], img['width'], 3)
            anns = coco.loadAnns(coco.getAnnIds(imgIds=img['id']))
            # 2-4 classes an image (a class may have several instances).
            assert 2 <= len({a['category_id'] for a in anns}) <= 4
            for a in anns:
                x, y, w, h = a['bbox']
                assert a['iscrowd'] == 0
                assert x >= 0 and y >= 0 and w > 0 and h > 0
                assert x + w <= img['width'] and y + h <= img['height']
                # Area is the object's pixel count: inside its box, and a
                # filled shape covers a good part of it.
                assert 0.2 * w * h <= a['area'] <= w * h
                assert 8 <= max(w, h) <= 80
                # The object is drawn in saturated colour: the box differs
                # from the muted grey background.
                crop = pixels[y:y + h, x:x + w].astype(int)
                assert (crop.max(2) - crop.min(2)).max() > 60


def test_boxes_match_drawn_object_colour(dataset):
    """A box's coloured pixels are the class colour (within the jitter)."""
    data = _load(dataset['val_ann'])
    files = {im['id']: im['file_name'] for im in data['images']}
    for a in data['annotations'][:40]:
        color_name = SYNTHETIC_CLASSES[a['category_id'] - 1].split('-')[0]
        x, y, w, h = a['bbox']
        img = cv2.imread(osp.join(dataset['val_img_dir'],
                                  files[a['image_id']]))
        crop = img[y:y + h, x:x + w].reshape(-1, 3).astype(int)
        dist = np.abs(crop - np.array(COLORS[color_name])).max(1)
        # At least ~the object's area is within the colour jitter (25).
        assert (dist <= 26).sum() >= 0.9 * a['area'], color_name


def test_every_class_in_val_and_balanced(dataset):
    data = _load(dataset['val_ann'])
    images_of = {c: set() for c in range(1, 65)}
    for a in data['annotations']:
        images_of[a['category_id']].add(a['image_id'])
    counts = [len(v) for v in images_of.values()]
    assert min(counts) >= 2, counts
    assert max(counts) - min(counts) <= 3, counts


def test_small_val_split_has_classes_in_several_images(tmp_path):
    """One-shot episodes need a class in >= 2 images (query from another
    image): even 8 val images give every drawn class that."""
    paths = generate_synthetic_dataset(str(tmp_path), num_train=0,
                                       num_val=8, seed=3, mode='colour')
    images_of = {}
    for a in _load(paths['val_ann'])['annotations']:
        images_of.setdefault(a['category_id'], set()).add(a['image_id'])
    assert len(images_of) >= 6
    assert min(len(v) for v in images_of.values()) >= 2


def test_split_is_disjoint_covering_and_made_of_seen_parts():
    split = synthetic_split('colour')
    seen, unseen = split['seen'], split['unseen']
    assert len(SYNTHETIC_CLASSES) >= 50
    assert len(set(SYNTHETIC_CLASSES)) == len(SYNTHETIC_CLASSES)
    assert not set(seen) & set(unseen)
    assert sorted(seen + unseen) == sorted(SYNTHETIC_CLASSES)
    assert len(unseen) == len(SYNTHETIC_CLASSES) // 4
    seen_colors = {c.split('-')[0] for c in seen}
    seen_shapes = {c.split('-')[1] for c in seen}
    assert seen_colors == set(COLORS) and seen_shapes == set(SHAPES)
    # Every unseen class is a new combination of a seen colour and shape.
    for name in unseen:
        color, shape = name.split('-')
        assert color in seen_colors and shape in seen_shapes
    assert synthetic_split('colour') == split  # stable


def test_shape_split_is_disjoint_covering_and_made_of_seen_parts():
    split = synthetic_split()
    seen, unseen = split['seen'], split['unseen']
    assert split == synthetic_split('shape')
    assert len(SHAPE_CLASSES) == len(set(SHAPE_CLASSES)) == 32
    assert not set(seen) & set(unseen)
    assert sorted(seen + unseen) == sorted(SHAPE_CLASSES)
    assert len(unseen) == 8
    assert {c.split('-')[0] for c in seen} == set(OUTLINES)
    assert {c.split('-')[1] for c in seen} == set(PATTERNS)
    # Every outline has exactly one unseen pattern.
    assert sorted(c.split('-')[0] for c in unseen) == sorted(OUTLINES)


@pytest.mark.parametrize('name, mode', [
    ('synthetic_oneshot.py', 'shape'),
    ('synthetic-colour_oneshot.py', 'colour')])
def test_dataset_config_lists_the_split(name, mode):
    cfg = Config.fromfile(osp.join(REPO, 'configs/_base_/datasets', name))
    split = synthetic_split(mode)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert cfg[loader].dataset.split == dict(seen=split['seen'],
                                                 unseen=split['unseen'])
        assert cfg[loader].dataset.data_root == cfg.data_root
    assert cfg.train_dataloader.dataset.episode_classes == 'seen'
    assert cfg.val_dataloader.dataset.episode_classes == 'unseen'


def _instance_hues(data: dict, img_dir: str) -> list:
    """(category id, image id, hue in degrees) of every object, measured
    from the pixels: the circular mean hue of the saturated pixels of its
    box (the background is grey and muted)."""
    files = {im['id']: im['file_name'] for im in data['images']}
    cache = {}
    out = []
    for a in data['annotations']:
        if a['image_id'] not in cache:
            img = cv2.imread(osp.join(img_dir, files[a['image_id']]))
            cache[a['image_id']] = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)
        x, y, w, h = a['bbox']
        hsv = cache[a['image_id']][y:y + h, x:x + w].reshape(-1, 3)
        obj = hsv[hsv[:, 1] >= 130]
        if len(obj) < 10:
            continue
        angle = obj[:, 0].astype(float) * np.pi / 90  # OpenCV hue: 0..179
        hue = np.degrees(np.arctan2(np.sin(angle).mean(),
                                    np.cos(angle).mean())) % 360
        out.append((a['category_id'], a['image_id'], hue))
    return out


def _hue_distance(a, b) -> np.ndarray:
    d = np.abs(np.asarray(a) - np.asarray(b)) % 360
    return np.minimum(d, 360 - d)


def _circular_mean(degrees) -> float:
    r = np.radians(degrees)
    return float(np.degrees(np.arctan2(np.sin(r).mean(),
                                       np.cos(r).mean())) % 360)


def test_shape_mode_colour_names_no_class(shape_dataset):
    """A nearest-class-mean classifier on the measured instance hue, fit on
    train and scored on val, is at chance level in the shape mode."""
    train = _instance_hues(_load(shape_dataset['train_ann']),
                           shape_dataset['train_img_dir'])
    val = _instance_hues(_load(shape_dataset['val_ann']),
                         shape_dataset['val_img_dir'])
    classes = sorted({c for c, _, _ in train})
    # The train images hold the 24 seen classes; scored on their val
    # instances.
    assert len(classes) == 24
    val = [v for v in val if v[0] in classes]
    assert len(val) > 100
    means = {c: _circular_mean([h for k, _, h in train if k == c])
             for c in classes}
    hits = [min(classes, key=lambda k: _hue_distance(h, means[k])) == c
            for c, _, h in val]
    assert np.mean(hits) < 3 / 24, np.mean(hits)  # chance: 1/24
    # Every class spans the colour wheel.
    for c in classes:
        hues = np.sort([h for k, _, h in train if k == c])
        assert len(hues) >= 10
        assert hues[-1] - hues[0] > 180, c


def test_colour_mode_is_told_by_colour(dataset):
    """The same measurement on the colour mode: one hue per colour name."""
    by_colour = {}
    for c, _, h in _instance_hues(_load(dataset['train_ann']),
                                  dataset['train_img_dir']):
        by_colour.setdefault(SYNTHETIC_CLASSES[c - 1].split('-')[0],
                             []).append(h)
    for name, values in by_colour.items():
        spread = _hue_distance(values, _circular_mean(values))
        assert np.percentile(spread, 90) < 25, name


def test_shape_mode_images_hold_a_same_colour_look_alike(shape_dataset):
    """Every image has two classes that share the outline or the pattern
    and are drawn in the same colour."""
    data = _load(shape_dataset['train_ann'])
    by_image = {}
    for c, img_id, h in _instance_hues(data, shape_dataset['train_img_dir']):
        by_image.setdefault(img_id, []).append((c, h))
    for img_id, objects in by_image.items():
        pairs = [
            (a, b) for a in objects for b in objects if a[0] < b[0]
            and set(SHAPE_CLASSES[a[0] - 1].split('-'))
            & set(SHAPE_CLASSES[b[0] - 1].split('-'))
            and _hue_distance(a[1], b[1]) < 8]
        assert pairs, (img_id, objects)
    assert len(by_image) >= 190


def test_shape_mode_json_and_classes_per_image(shape_dataset):
    coco = COCO(shape_dataset['val_ann'])
    names = [c['name'] for c in coco.loadCats(coco.getCatIds())]
    assert names == SHAPE_CLASSES
    for img in coco.loadImgs(coco.getImgIds()):
        anns = coco.loadAnns(coco.getAnnIds(imgIds=img['id']))
        # 2-4 drawn classes plus the look-alike.
        assert 3 <= len({a['category_id'] for a in anns}) <= 5
        for a in anns:
            x, y, w, h = a['bbox']
            assert x >= 0 and y >= 0 and w > 0 and h > 0
            assert x + w <= img['width'] and y + h <= img['height']
            assert 0.1 * w * h <= a['area'] <= w * h


def test_shape_mode_is_deterministic(shape_dataset, tmp_path):
    again = generate_synthetic_dataset(str(tmp_path), num_train=200,
                                       num_val=32, seed=0)
    assert _load(again['val_ann']) == _load(shape_dataset['val_ann'])
    a = _pixels(shape_dataset['val_img_dir'])
    b = _pixels(again['val_img_dir'])
    assert len(a) == 32
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_dataset_base_builds_episodes(dataset):
    from mmdet.registry import DATASETS
    from mmengine.registry import init_default_scope

    import oneshot  # noqa: F401  (registers the modules)
    init_default_scope('mmdet')
    cfg = Config.fromfile(
        osp.join(REPO,
                 'configs/_base_/datasets/synthetic-colour_oneshot.py'))
    ds_cfg = cfg.val_dataloader.dataset
    ds_cfg.data_root = dataset['root'] + '/'
    ds = DATASETS.build(ds_cfg)
    assert len(ds) > 0
    item = ds[0]
    assert item['inputs']['img'].shape == (3, 160, 160)
    size = cfg.query_size
    assert item['inputs']['query'].shape == (1, 3, size, size)
    label = item['data_samples'].episode_label
    assert ds.metainfo['classes'][label] in synthetic_split('colour')[
        'unseen']


def test_skip_existing_keeps_and_param_change_regenerates(tmp_path):
    root = str(tmp_path)
    paths = generate_synthetic_dataset(root, num_train=3, num_val=2)
    mtime = os.stat(paths['train_ann']).st_mtime_ns
    generate_synthetic_dataset(root, num_train=3, num_val=2)
    assert os.stat(paths['train_ann']).st_mtime_ns == mtime
    generate_synthetic_dataset(root, num_train=4, num_val=2)
    assert len(_load(paths['train_ann'])['images']) == 4
    # A missing image means the data are incomplete: regenerate.
    os.remove(osp.join(paths['val_img_dir'], '000001.png'))
    generate_synthetic_dataset(root, num_train=4, num_val=2)
    assert osp.isfile(osp.join(paths['val_img_dir'], '000001.png'))


def test_shape_mode_trains_on_seen_classes_only(shape_dataset, tmp_path):
    """Shape mode: no unseen object in any train image; the val images
    hold every class and do not depend on ``train_classes``."""
    split = synthetic_split()
    ids = {n: i + 1 for i, n in enumerate(SHAPE_CLASSES)}
    train = {a['category_id']
             for a in _load(shape_dataset['train_ann'])['annotations']}
    assert train == {ids[n] for n in split['seen']}
    val = {a['category_id']
           for a in _load(shape_dataset['val_ann'])['annotations']}
    assert val == set(ids.values())
    mixed = generate_synthetic_dataset(str(tmp_path), num_train=200,
                                       num_val=32, seed=0,
                                       train_classes='all')
    assert {a['category_id'] for a in _load(mixed['train_ann'])[
        'annotations']} == set(ids.values())
    assert (_load(mixed['val_ann'])['annotations']
            == _load(shape_dataset['val_ann'])['annotations'])
    assert all(np.array_equal(x, y) for x, y in zip(
        _pixels(mixed['val_img_dir']), _pixels(shape_dataset['val_img_dir'])))


def test_colour_mode_trains_on_all_classes(dataset):
    train = {a['category_id']
             for a in _load(dataset['train_ann'])['annotations']}
    unseen = {SYNTHETIC_CLASSES.index(n) + 1
              for n in synthetic_split('colour')['unseen']}
    assert train & unseen


def test_restricted_classes(tmp_path):
    classes = ['red-circle', 'blue-square', 'green-star']
    paths = generate_synthetic_dataset(str(tmp_path), num_train=6,
                                       num_val=3, classes=classes,
                                       mode='colour')
    data = _load(paths['train_ann'])
    assert len(data['categories']) == 64
    drawn = {SYNTHETIC_CLASSES[a['category_id'] - 1]
             for a in data['annotations']}
    assert drawn <= set(classes) and len(drawn) >= 2


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match='pink-circle'):
        generate_synthetic_dataset(str(tmp_path), classes=['pink-circle',
                                                           'red-star'],
                                   mode='colour')
    with pytest.raises(ValueError, match="red-star.*mode='shape'"):
        generate_synthetic_dataset(str(tmp_path), classes=['red-star',
                                                           'star-solid'])
    with pytest.raises(ValueError, match='grey'):
        generate_synthetic_dataset(str(tmp_path), mode='grey')
    with pytest.raises(ValueError, match='image_size'):
        generate_synthetic_dataset(str(tmp_path), image_size=32)
    with pytest.raises(ValueError, match='num_train'):
        generate_synthetic_dataset(str(tmp_path), num_train=-1)
    with pytest.raises(ValueError, match='train_classes'):
        generate_synthetic_dataset(str(tmp_path), train_classes='unseen')
    # Two unseen classes only: nothing left for the train images.
    with pytest.raises(ValueError, match="0 seen class.*train_classes='all'"):
        generate_synthetic_dataset(str(tmp_path),
                                   classes=['circle-solid', 'star-solid'])


def test_cli_prints_summary(tmp_path):
    out = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools/data/generate_synthetic.py'),
         str(tmp_path), '--num-train', '4', '--num-val', '3', '--seed', '2'],
        capture_output=True, text=True, check=True,
        env=dict(os.environ, PYTHONWARNINGS='ignore')).stdout
    assert 'shape mode' in out
    assert '32 classes (24 seen, 8 unseen)' in out
    assert 'train: 4 images' in out and 'val: 3 images' in out
    assert _load(osp.join(str(tmp_path), 'annotations/val.json'))[
        'info']['seed'] == 2

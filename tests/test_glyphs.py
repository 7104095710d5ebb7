"""The glyph one-shot dataset: determinism, COCO validity, the class list
and its seen/unseen split by block, real (not missing-glyph) instances,
colour independent of class, the dataset base config and the CLI."""
import json
import os
import os.path as osp
import random
import subprocess
import sys

import cv2
import numpy as np
import pytest
from mmengine.config import Config
from pycocotools.coco import COCO

from oneshot.datasets.glyphs import (BLOCKS, FONT_FILES, GLYPH_BLOCKS,
                                     GLYPH_CHARS, MIN_FONTS, MISSING_CHAR,
                                     default_font_dir, find_fonts,
                                     font_has_char, generate_glyph_dataset,
                                     glyph_bank, glyph_classes, glyph_split,
                                     render_glyph)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CLASSES = glyph_classes()
NUM_TRAIN, NUM_VAL = 40, 460  # every class in >= 2 balanced val images

# Characters that render (nearly) alike in most fonts, up to scale, aspect
# or a mirror flip: at most one of each group may be a class.
CONFUSABLE = [
    'Oo0\u039f\u03bf\u041e\u043e\u25cb', 'lI|\u0399\u0406\u04c0', 'l1',
    'cC\u0441\u0421', 'sS\u0455\u0405', 'vV\u03bd\u0474\u2228',
    'wW\u0461', 'xX\u00d7\u0445\u0425\u03c7\u03a7', 'zZ\u0396',
    'A\u0391\u0410', 'B\u0392\u0412', 'E\u0395\u0415', 'H\u0397\u041d',
    'K\u039a\u041a\u03ba\u043a', 'M\u039c\u041c', 'N\u039d',
    'Pp\u03a1\u0420\u0440\u03c1', 'T\u03a4\u0422\u22a4', 'Y\u03a5\u04ae',
    'y\u0443\u0423', 'a\u0430', 'e\u0435', 'h\u04bb\u04ba', 'i\u0456',
    'j\u0458', 'bd\u266d', 'q\u051b', '3\u03b5\u0417\u0437',
    'N\u0418', 'R\u042f', 'E\u2203', '\u03a0\u041f\u220f\u03c0',
    '\u03a6\u0424\u0444\u03c6', '\u03a3\u2211\u01a9', '\u0393\u0413',
    '\u0398\u0472\u03b8\u04e8', '\u039b\u2227', '\u0394\u25b3\u2206',
    '\u2207\u25bd', '\u25c6\u2666', '\u25a1\u2610', '\u2192\u2190',
    '\u2205\u2298', '\u2299\u25c9\u2609', '\u039e\u2261', '#\u266f',
    '\u00b5\u03bc', '\u2208\u0404\u03f5', '\u25c7\u25ca', '\u25cf\u2022',
    '\u25a0\u25aa', '\u03a8\u03c8\u0470', '\u2295\u2641',
]


@pytest.fixture(scope='module')
def dataset(tmp_path_factory) -> dict:
    root = str(tmp_path_factory.mktemp('glyphs'))
    paths = generate_glyph_dataset(root, num_train=NUM_TRAIN,
                                   num_val=NUM_VAL, seed=0)
    return dict(root=root, **paths)


def _load(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def _pixels(img_dir: str) -> list:
    return [cv2.imread(osp.join(img_dir, n), cv2.IMREAD_UNCHANGED)
            for n in sorted(os.listdir(img_dir))]


def _instances(ann_file: str, img_dir: str):
    """Yield ``(annotation, crop)``: each box's pixels."""
    data = _load(ann_file)
    images = {im['id']: cv2.imread(osp.join(img_dir, im['file_name']))
              for im in data['images']}
    for a in data['annotations']:
        x, y, w, h = a['bbox']
        yield a, images[a['image_id']][y:y + h, x:x + w]


def _ink(crop: np.ndarray) -> np.ndarray:
    """Glyph pixels of a box: saturated colour (the clutter is muted)."""
    crop = crop.astype(int)
    return crop.max(2) - crop.min(2) > 60


def test_same_seed_same_json_and_pixels(dataset, tmp_path):
    again = generate_glyph_dataset(str(tmp_path / 'b'), num_train=NUM_TRAIN,
                                   num_val=NUM_VAL, seed=0)
    for name in ('train', 'val'):
        assert _load(again[f'{name}_ann']) == _load(dataset[f'{name}_ann'])
        a = _pixels(dataset[f'{name}_img_dir'])
        b = _pixels(again[f'{name}_img_dir'])
        assert len(a) == len(b) > 0
        assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_different_seed_differs(dataset, tmp_path):
    other = generate_glyph_dataset(str(tmp_path), num_train=4, num_val=0,
                                   seed=1)
    a, b = _load(dataset['train_ann']), _load(other['train_ann'])
    assert a['annotations'][:10] != b['annotations'][:10]
    assert not np.array_equal(_pixels(dataset['train_img_dir'])[0],
                              _pixels(other['train_img_dir'])[0])


def test_generation_leaves_global_rngs_alone(tmp_path):
    np.random.seed(123)
    random.seed(123)
    expected = np.random.rand(3), random.random()
    np.random.seed(123)
    random.seed(123)
    generate_glyph_dataset(str(tmp_path), num_train=2, num_val=2)
    assert np.array_equal(np.random.rand(3), expected[0])
    assert random.random() == expected[1]


def test_coco_json_is_valid(dataset):
    for name, num in (('train', NUM_TRAIN), ('val', NUM_VAL)):
        coco = COCO(dataset[f'{name}_ann'])
        cats = coco.loadCats(coco.getCatIds())
        assert [c['id'] for c in cats] == list(range(1, len(CLASSES) + 1))
        assert [c['name'] for c in cats] == CLASSES
        for c in cats:
            assert c['supercategory'] == GLYPH_BLOCKS[c['name']]
            assert c['codepoint'] == f'U+{ord(GLYPH_CHARS[c["name"]]):04X}'
        assert len(coco.getImgIds()) == num
        for img in coco.loadImgs(coco.getImgIds()):
            path = osp.join(dataset[f'{name}_img_dir'], img['file_name'])
            assert cv2.imread(path).shape == (img['height'], img['width'], 3)
            anns = coco.loadAnns(coco.getAnnIds(imgIds=img['id']))
            # 2-4 classes an image (a class may have several instances),
            # two of them from the same block (a look-alike distractor).
            classes = {CLASSES[a['category_id'] - 1] for a in anns}
            assert 2 <= len(classes) <= 4
            blocks = [GLYPH_BLOCKS[c] for c in classes]
            assert len(set(blocks)) < len(blocks)
            boxes = []
            for a in anns:
                x, y, w, h = a['bbox']
                assert a['iscrowd'] == 0
                assert x >= 0 and y >= 0 and w > 0 and h > 0
                assert x + w <= img['width'] and y + h <= img['height']
                assert 0 < a['area'] <= w * h
                assert 12 <= max(w, h) <= 62
                boxes.append((x, y, x + w, y + h))
            # Objects do not overlap.
            for i, (x1, y1, x2, y2) in enumerate(boxes):
                for u1, v1, u2, v2 in boxes[:i]:
                    assert x2 <= u1 or u2 <= x1 or y2 <= v1 or v2 <= y1


def test_every_instance_has_ink(dataset):
    """The pixels of every box are mostly the glyph's saturated colour."""
    for name in ('train', 'val'):
        for a, crop in _instances(dataset[f'{name}_ann'],
                                  dataset[f'{name}_img_dir']):
            ink = _ink(crop)
            assert ink.sum() >= max(20, 0.5 * a['area']), a
            # The ink spans the (tight) box.
            ys, xs = np.nonzero(ink)
            assert xs.max() - xs.min() + 1 >= 0.75 * a['bbox'][2], a
            assert ys.max() - ys.min() + 1 >= 0.75 * a['bbox'][3], a


def test_every_class_in_val_and_balanced(dataset):
    images_of = {c: set() for c in range(1, len(CLASSES) + 1)}
    for a in _load(dataset['val_ann'])['annotations']:
        images_of[a['category_id']].add(a['image_id'])
    counts = [len(v) for v in images_of.values()]
    # One-shot episodes need a class in >= 2 images (query from another).
    assert min(counts) >= 2, counts
    assert max(counts) <= 4 * min(counts), counts


def test_classes_and_split_by_block():
    split = glyph_split()
    seen, unseen = split['seen'], split['unseen']
    assert len(CLASSES) >= 200 and len(unseen) >= 50
    assert len(set(CLASSES)) == len(CLASSES)
    assert len(set(GLYPH_CHARS.values())) == len(CLASSES)
    assert not set(seen) & set(unseen)
    assert seen + unseen == sorted(CLASSES, key=lambda n: (
        n in unseen, CLASSES.index(n)))  # complete, in class order
    # The rule: no unseen class shares its block with a seen class.
    seen_blocks = {GLYPH_BLOCKS[n] for n in seen}
    unseen_blocks = {GLYPH_BLOCKS[n] for n in unseen}
    assert not seen_blocks & unseen_blocks
    assert unseen_blocks == {'greek', 'cyrillic', 'misc-symbol'}
    for block in BLOCKS:
        for char in block.chars:
            assert block.first <= ord(char) <= block.last, char
    for name in CLASSES:
        assert name.isascii() and ' ' not in name
        code = f'{ord(GLYPH_CHARS[name]):04X}'
        assert name.startswith(f'{GLYPH_BLOCKS[name]}-{code}-'), name
    assert glyph_split() == split  # stable


def test_split_with_other_blocks_held_out():
    split = glyph_split(unseen_blocks=('latin', 'greek'))
    assert {GLYPH_BLOCKS[n] for n in split['unseen']} == {'latin', 'greek'}
    assert 'cyrillic' in {GLYPH_BLOCKS[n] for n in split['seen']}
    assert sorted(split['seen'] + split['unseen']) == sorted(CLASSES)
    assert not set(split['seen']) & set(split['unseen'])
    with pytest.raises(ValueError, match="'runic'"):
        glyph_split(unseen_blocks=('latin', 'runic'))
    with pytest.raises(ValueError, match='one or more'):
        glyph_split(unseen_blocks=())


def test_no_confusable_classes():
    chars = set(GLYPH_CHARS.values())
    for group in CONFUSABLE:
        assert len(chars & set(group)) <= 1, group


def _descriptors(masks: dict, mirror: bool = False) -> dict:
    """Per font: the mask squeezed to 24 x 24 (scale and aspect removed),
    zero-mean, unit norm."""
    out = {}
    for font, m in masks.items():
        d = cv2.resize((m[:, ::-1] if mirror else m).astype(np.float32),
                       (24, 24), interpolation=cv2.INTER_AREA).ravel()
        d -= d.mean()
        out[font] = d / np.linalg.norm(d)
    return out


def _upright(font: str) -> bool:
    return not any(k in font for k in ('Oblique', 'Italic', 'Ita', 'cmti',
                                       'cmmi'))


def test_no_two_classes_render_alike():
    """No two classes are the same shape (median over the fonts both have
    of the correlation of their scale- and aspect-free masks), nor mirror
    images in upright fonts (training flips images)."""
    bank = glyph_bank()
    fonts = sorted({f for found in bank for f, _ in found})
    direct = np.full((len(fonts), len(CLASSES), 576), np.nan)
    mirror = np.full_like(direct, np.nan)
    for i, found in enumerate(bank):
        for f, d in _descriptors(dict(found)).items():
            direct[fonts.index(f), i] = d
        for f, d in _descriptors(dict(found), mirror=True).items():
            if _upright(f):
                mirror[fonts.index(f), i] = d
    same = np.nanmedian(np.einsum('fid,fjd->fij', direct, direct), 0)
    flipped = np.nanmedian(np.einsum('fid,fjd->fij', direct, mirror), 0)
    sim = np.fmax(same, np.fmax(flipped, flipped.T))
    np.fill_diagonal(sim, -1)
    worst = np.unravel_index(np.nanargmax(sim), sim.shape)
    assert sim[worst] < 0.97, [CLASSES[i] for i in worst]
    # The measure does catch a homoglyph: Latin A vs Greek Alpha.
    path = osp.join(default_font_dir(), 'DejaVuSans.ttf')
    a, alpha = (_descriptors({'f': render_glyph(path, c)})['f']
                for c in ('A', '\u0391'))
    assert a @ alpha > 0.97


def test_every_class_renders_real_glyphs():
    """Each class is drawn by >= MIN_FONTS fonts, and no cached glyph is
    empty or the font's missing-glyph box."""
    paths = {osp.basename(p): p for p in find_fonts()}
    assert set(paths) == set(FONT_FILES)
    missing = {f: render_glyph(p, MISSING_CHAR) for f, p in paths.items()}
    # DejaVu draws a box for a missing glyph (STIX draws nothing).
    assert missing['DejaVuSans.ttf'] is not None
    assert not font_has_char(paths['DejaVuSans.ttf'], MISSING_CHAR)
    for name, found in zip(CLASSES, glyph_bank()):
        assert len(found) >= MIN_FONTS, name
        for font, mask in found:
            assert font_has_char(paths[font], GLYPH_CHARS[name])
            assert (mask >= 128).sum() >= 30, (name, font)
            box = missing[font]
            if box is not None and box.shape == mask.shape:
                diff = np.abs(box.astype(int) - mask).mean()
                assert diff > 2, (name, font)


def test_colour_carries_no_class_information(tmp_path):
    """Per class, the hues of the instances (measured from the glyph pixels
    of each box) spread over the colour wheel as widely as over all
    instances: the class means hardly differ and a nearest-class-mean
    hue classifier is at chance level."""
    chosen = [n for b in BLOCKS for n in CLASSES
              if GLYPH_BLOCKS[n] == b.name][::20]
    paths = generate_glyph_dataset(str(tmp_path), num_train=120, num_val=0,
                                   classes=chosen, seed=5)
    feats, labels = [], []
    for a, crop in _instances(paths['train_ann'], paths['train_img_dir']):
        hue = cv2.cvtColor(crop, cv2.COLOR_BGR2HSV)[..., 0][_ink(crop)]
        angle = hue.astype(np.float64) * np.pi / 90
        feats.append([np.cos(angle).mean(), np.sin(angle).mean()])
        labels.append(a['category_id'])
    feats, labels = np.asarray(feats), np.asarray(labels)
    classes = np.unique(labels)
    assert len(classes) == len(chosen) >= 10 and len(labels) >= 300
    # Hues cover the wheel: the mean hue vector is near 0.
    assert np.linalg.norm(feats.mean(0)) < 0.25
    means = np.stack([feats[labels == c].mean(0) for c in classes])
    assert np.linalg.norm(means, axis=1).max() < 0.5
    # Between-class share of the hue variance: (C - 1) / (N - 1) expected.
    total = ((feats - feats.mean(0)) ** 2).sum()
    between = sum((labels == c).sum() * ((m - feats.mean(0)) ** 2).sum()
                  for c, m in zip(classes, means))
    expected = (len(classes) - 1) / (len(labels) - 1)
    assert between / total < 3 * expected
    # Leave-one-out nearest class mean: chance is 1 / C.
    correct = 0
    for i, (x, y) in enumerate(zip(feats, labels)):
        keep = np.arange(len(labels)) != i
        loo = np.stack([feats[keep & (labels == c)].mean(0)
                        for c in classes])
        correct += classes[np.argmin(((loo - x) ** 2).sum(1))] == y
    assert correct / len(labels) < 2 / len(classes)


def test_dataset_config_lists_the_split():
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/_base_/datasets/glyphs_oneshot.py'))
    split = glyph_split()
    assert cfg.data_root == 'data/glyphs/'
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert cfg[loader].dataset.split == dict(seen=split['seen'],
                                                 unseen=split['unseen'])
    assert cfg.train_dataloader.dataset.episode_classes == 'seen'
    assert cfg.val_dataloader.dataset.episode_classes == 'unseen'


def test_dataset_base_builds_episodes(dataset):
    from mmdet.registry import DATASETS
    from mmengine.registry import init_default_scope

    import oneshot  # noqa: F401  (registers the modules)
    init_default_scope('mmdet')
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/_base_/datasets/glyphs_oneshot.py'))
    ds_cfg = cfg.val_dataloader.dataset
    ds_cfg.data_root = dataset['root'] + '/'
    ds = DATASETS.build(ds_cfg)
    assert len(ds) > 0
    item = ds[0]
    assert item['inputs']['img'].shape == (3, 160, 160)
    size = cfg.query_size
    assert item['inputs']['query'].shape == (1, 3, size, size)
    label = item['data_samples'].episode_label
    assert ds.metainfo['classes'][label] in glyph_split()['unseen']


def test_skip_existing_keeps_and_param_change_regenerates(tmp_path):
    root = str(tmp_path / 'data')
    paths = generate_glyph_dataset(root, num_train=3, num_val=2)
    mtime = os.stat(paths['train_ann']).st_mtime_ns
    generate_glyph_dataset(root, num_train=3, num_val=2)
    assert os.stat(paths['train_ann']).st_mtime_ns == mtime
    generate_glyph_dataset(root, num_train=4, num_val=2)
    assert len(_load(paths['train_ann'])['images']) == 4
    # A missing image means the data are incomplete: regenerate.
    os.remove(osp.join(paths['val_img_dir'], '000001.png'))
    generate_glyph_dataset(root, num_train=4, num_val=2)
    assert osp.isfile(osp.join(paths['val_img_dir'], '000001.png'))
    # Other fonts, other pictures: regenerate.
    fonts = tmp_path / 'fonts'
    fonts.mkdir()
    for name in FONT_FILES[:4]:  # DejaVu Sans in 4 weights / slants
        os.symlink(osp.join(default_font_dir(), name), fonts / name)
    mtime = os.stat(paths['train_ann']).st_mtime_ns
    generate_glyph_dataset(root, num_train=4, num_val=2, font_dir=str(fonts))
    assert os.stat(paths['train_ann']).st_mtime_ns != mtime
    assert _load(paths['train_ann'])['info']['fonts'] == list(FONT_FILES[:4])


def test_train_classes_seen_draws_no_unseen_glyph(dataset, tmp_path):
    split = glyph_split()
    ids = {n: i + 1 for i, n in enumerate(glyph_classes())}
    unseen = {ids[n] for n in split['unseen']}
    # The default draws every class into the train images.
    assert {a['category_id'] for a in _load(dataset['train_ann'])[
        'annotations']} & unseen
    paths = generate_glyph_dataset(str(tmp_path), num_train=60, num_val=4,
                                   train_classes='seen')
    drawn = {a['category_id'] for a in _load(paths['train_ann'])[
        'annotations']}
    assert drawn and not drawn & unseen
    with pytest.raises(ValueError, match='train_classes'):
        generate_glyph_dataset(str(tmp_path), train_classes='unseen')


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match='latin-0030-0'):
        generate_glyph_dataset(str(tmp_path), classes=['latin-0030-0',
                                                       CLASSES[0]])
    with pytest.raises(ValueError, match='at least 2'):
        generate_glyph_dataset(str(tmp_path), classes=CLASSES[:1])
    with pytest.raises(ValueError, match='image_size'):
        generate_glyph_dataset(str(tmp_path), image_size=32)
    with pytest.raises(ValueError, match='num_train'):
        generate_glyph_dataset(str(tmp_path), num_train=-1)
    with pytest.raises(ValueError, match='num_val'):
        generate_glyph_dataset(str(tmp_path), num_val=1.5)
    empty = tmp_path / 'no_fonts'
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match='no_fonts'):
        generate_glyph_dataset(str(tmp_path), font_dir=str(empty))
    few = tmp_path / 'few_fonts'
    few.mkdir()
    os.symlink(osp.join(default_font_dir(), 'cmr10.ttf'), few / 'cmr10.ttf')
    with pytest.raises(RuntimeError, match='few_fonts'):
        generate_glyph_dataset(str(tmp_path), font_dir=str(few))


def test_cli_prints_summary(tmp_path):
    out = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools/data/generate_glyphs.py'),
         str(tmp_path), '--num-train', '4', '--num-val', '3', '--seed', '2'],
        capture_output=True, text=True, check=True,
        env=dict(os.environ, PYTHONWARNINGS='ignore')).stdout
    split = glyph_split()
    assert (f'{len(CLASSES)} classes ({len(split["seen"])} seen, '
            f'{len(split["unseen"])} unseen)') in out
    assert 'unseen blocks: greek' in out
    assert 'train: 4 images' in out and 'val: 3 images' in out
    assert ' s): ' in out  # the time taken
    assert _load(osp.join(str(tmp_path), 'annotations/val.json'))[
        'info']['seed'] == 2

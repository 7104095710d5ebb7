"""The built-in splits equal the lists of the papers' protocol (copied
literally from docs/protocol.md, "COCO splits")."""
import pytest

from oneshot.datasets.splits import (COCO_CLASSES, VOC_CLASSES, builtin_split,
                                     coco_split_classes, resolve_split)

PAPER_UNSEEN = {
    1: 'person, airplane, boat, parking meter, dog, elephant, backpack, '
       'suitcase, sports ball, skateboard, wine glass, spoon, sandwich, '
       'hot dog, chair, dining table, mouse, microwave, refrigerator, '
       'scissors',
    2: 'bicycle, bus, traffic light, bench, horse, bear, umbrella, frisbee, '
       'kite, surfboard, cup, bowl, orange, pizza, couch, toilet, remote, '
       'oven, book, teddy bear',
    3: 'car, train, fire hydrant, bird, sheep, zebra, handbag, skis, '
       'baseball bat, tennis racket, fork, banana, broccoli, donut, '
       'potted plant, tv, keyboard, toaster, clock, hair drier',
    4: 'motorcycle, truck, stop sign, cat, cow, giraffe, tie, snowboard, '
       'baseball glove, bottle, knife, apple, carrot, cake, bed, laptop, '
       'cell phone, sink, vase, toothbrush',
}


@pytest.mark.parametrize('split', [1, 2, 3, 4])
def test_coco_splits_equal_the_papers_lists(split):
    seen, unseen = coco_split_classes(split)
    assert list(unseen) == PAPER_UNSEEN[split].split(', ')
    assert len(seen) == 60 and not set(seen) & set(unseen)
    assert set(seen) | set(unseen) == set(COCO_CLASSES)


def test_the_four_coco_splits_partition_the_classes():
    unseen = [c for i in range(1, 5) for c in coco_split_classes(i)[1]]
    assert sorted(unseen) == sorted(COCO_CLASSES)


def test_voc_split():
    seen, unseen = resolve_split('voc', VOC_CLASSES)
    assert set(unseen) == {'aeroplane', 'cat', 'cow', 'sheep'}
    assert len(seen) == 16


def test_custom_split_and_errors():
    names = ['a', 'b', 'c']
    assert resolve_split(dict(unseen=['c']), names) == (('a', 'b'), ('c',))
    assert resolve_split(dict(seen=['a'], unseen=['c']), names) == (
        ('a',), ('c',))
    with pytest.raises(ValueError, match="'zebra'"):
        resolve_split(dict(unseen=['zebra']), names, source='my.json')
    with pytest.raises(ValueError, match='both seen and unseen'):
        resolve_split(dict(seen=['a'], unseen=['a']), names)
    with pytest.raises(ValueError, match='coco_split5'):
        resolve_split('coco_split5', names)


@pytest.mark.parametrize('name,base', [
    ('glyphs', 'glyphs_oneshot.py'),
    ('synthetic-shape', 'synthetic_oneshot.py'),
    ('synthetic-colour', 'synthetic-colour_oneshot.py')])
def test_generated_data_splits_equal_their_config_lists(name, base):
    """The built-in names the per-method glyph configs use give the class
    lists written out in the dataset base configs."""
    import os.path as osp

    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(
        osp.dirname(osp.dirname(osp.abspath(__file__))),
        'configs/_base_/datasets', base))
    seen, unseen = builtin_split(name)
    assert list(seen) == list(cfg.seen_classes)
    assert list(unseen) == list(cfg.unseen_classes)
    assert not set(seen) & set(unseen)

"""Episode logic of OneShotCocoDataset and the episode samplers."""
import json
import os.path as osp
import random

import numpy as np
import pytest
import torch
from mmdet.registry import DATASETS
from mmengine.registry import init_default_scope

import oneshot.datasets.samplers as samplers_mod
from oneshot.datasets import (EpisodeSampler, ImageGroupedSampler,
                              InfiniteEpisodeSampler, SameImageBatchSampler)

init_default_scope('mmdet')

PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='LoadQueryPatches'),
    dict(type='ResizeQueryPatches', size=32),
    dict(type='PackOneShotInputs'),
]


def build(tiny, **kw):
    cfg = dict(type='OneShotCocoDataset', ann_file=tiny['ann_file'],
               data_prefix=dict(img=tiny['root']), split=tiny['split'],
               query_min_size=8, pipeline=PIPELINE)
    cfg.update(kw)
    return DATASETS.build(cfg)


def test_metainfo_and_query_bank(tiny_coco):
    ds = build(tiny_coco)
    assert ds.metainfo['classes'] == tuple(tiny_coco['classes'])
    assert ds.metainfo['unseen_classes'] == ('c5',)
    bank_ann_ids = {e[0] for v in ds.query_bank.values() for e in v}
    assert 102 not in bank_ann_ids  # the crowd box never serves as a query
    assert 105 not in bank_ann_ids  # nor the zero-width box


def test_training_episodes(tiny_coco):
    ds = build(tiny_coco)
    classes = ds.metainfo['classes']
    seen_labels = {classes.index(c) for c in ds.metainfo['seen_classes']}
    for idx in range(len(ds)):
        for draw in range(30):
            ep = ds.get_data_info((idx, f'draw{draw}'))
            label = ep['episode_label']
            assert label in seen_labels
            # The query never comes from the target image.
            assert all(q['img_id'] != ep['img_id'] for q in ep['query_infos'])
            # The target image holds the class; gt = that class only.
            own = [b for n, b, crowd in tiny_coco['boxes'][ep['img_id']]
                   if n == classes[label]]
            assert sorted(i['bbox'] for i in ep['instances']) == \
                sorted(map(list, map(lambda b: map(float, b), own)))
            assert all(i['bbox_label'] == 0 for i in ep['instances'])
            assert ep['episode_cat_id'] == label + 1


def test_crowd_box_is_an_ignored_ground_truth(tiny_coco):
    ds = build(tiny_coco, test_mode=True, episode_classes='all')
    ep = next(ds.get_data_info(i) for i in range(len(ds))
              if ds.get_data_info(i)['img_id'] == 1
              and ds.get_data_info(i)['episode_label'] == 0)
    flags = sorted(i['ignore_flag'] for i in ep['instances'])
    assert flags == [0, 1]
    packed = ds[ds.get_data_info(0)['episode_id']]
    assert packed['data_samples'].gt_instances.labels.tolist() in ([0], [0, 0])


def test_training_draws_are_deterministic_and_vary_with_epoch(tiny_coco):
    ds = build(tiny_coco)
    a = [ds.get_data_info(i) for i in EpisodeSampler(ds, seed=3)]
    b = [ds.get_data_info(i) for i in EpisodeSampler(ds, seed=3)]
    assert a == b
    sampler = EpisodeSampler(ds, shuffle=False, seed=3)
    draws = set()
    for epoch in range(8):
        sampler.set_epoch(epoch)
        draws.add(tuple((ep['episode_label'],
                         ep['query_infos'][0]['ann_id'])
                        for ep in map(ds.get_data_info, sampler)))
    assert len(draws) > 1  # new episodes each epoch
    # The pipeline output too is a function of (idx, draw seed).
    x, y = ds[(2, 'k')], ds[(2, 'k')]
    assert torch.equal(x['inputs']['query'], y['inputs']['query'])


def test_infinite_sampler_changes_draws_between_passes(tiny_coco):
    ds = build(tiny_coco)
    it = iter(InfiniteEpisodeSampler(ds, shuffle=False, seed=0))
    first = [next(it) for _ in range(len(ds))]
    second = [next(it) for _ in range(len(ds))]
    assert [i for i, _ in first] == [i for i, _ in second]
    assert [s for _, s in first] != [s for _, s in second]


def test_dataset_leaves_global_rngs_alone(tiny_coco):
    ds = build(tiny_coco)
    tds = build(tiny_coco, test_mode=True, episode_classes='all')
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    states = (random.getstate(), np.random.get_state()[1].copy(),
              torch.get_rng_state().clone())
    for i in range(len(ds)):
        ds.get_data_info((i, 'x'))
    for r in range(3):
        tds.set_run(r)
        for i in range(len(tds)):
            tds.get_data_info(i)
    assert random.getstate() == states[0]
    assert np.array_equal(np.random.get_state()[1], states[1])
    assert torch.equal(torch.get_rng_state(), states[2])


def test_test_queries_are_deterministic_per_run(tiny_coco):
    tds = build(tiny_coco, test_mode=True, episode_classes='all')
    again = build(tiny_coco, test_mode=True, episode_classes='all')
    per_run = []
    for run in range(4):
        tds.set_run(run)
        again.set_run(run)
        q = [tds.get_data_info(i)['query_infos'][0]['ann_id']
             for i in range(len(tds))]
        assert q == [again.get_data_info(i)['query_infos'][0]['ann_id']
                     for i in range(len(again))]
        per_run.append(q)
        for i in range(len(tds)):
            ep = tds.get_data_info(i)
            assert ep['run'] == run
            assert ep['query_infos'][0]['img_id'] != ep['img_id']
    # A class with n > 1 candidates gets different queries across runs...
    assert per_run[0] != per_run[1]
    # ...and run r uses element r % n: with n candidates, run n == run 0.
    for i in range(len(tds)):
        ep = tds.get_data_info(i)
        n = tds._available(ep['episode_label'], ep['img_id'])
        tds.set_run(0)
        q0 = tds.get_data_info(i)['query_infos'][0]['ann_id']
        tds.set_run(n)
        assert tds.get_data_info(i)['query_infos'][0]['ann_id'] == q0


def test_test_episodes_cover_image_class_pairs(tiny_coco):
    tds = build(tiny_coco, test_mode=True)  # unseen: c5
    pairs = {(tds.get_data_info(i)['img_id'],
              tds.get_data_info(i)['episode_label']) for i in range(len(tds))}
    assert pairs == {(3, 5), (4, 5)}


def test_k_shot_queries(tiny_coco):
    ds = build(tiny_coco, num_shots=3)
    out = ds[(0, 's')]
    assert out['inputs']['query'].shape == (3, 3, 32, 32)
    tds = build(tiny_coco, test_mode=True, episode_classes='all',
                num_shots=2)
    ep = tds.get_data_info(0)
    assert len(ep['query_infos']) == 2


def test_grayscale_and_rgba_images_give_three_channels(tiny_coco):
    tds = build(tiny_coco, test_mode=True, episode_classes='all')
    seen_ids = set()
    for i in range(len(tds)):
        ep = tds.get_data_info(i)
        out = tds[i]
        assert out['inputs']['img'].shape[0] == 3
        assert out['inputs']['query'].shape[1] == 3
        seen_ids.add(ep['img_id'])
        seen_ids.update(q['img_id'] for q in ep['query_infos'])
    assert {5, 6} <= seen_ids  # the grayscale and the RGBA file were used


def test_bad_input_errors(tiny_coco, tmp_path):
    with pytest.raises(ValueError, match='zebra'):
        build(tiny_coco, split=dict(unseen=['zebra']))
    empty = tmp_path / 'empty.json'
    empty.write_text(json.dumps(dict(images=[], annotations=[],
                                     categories=[dict(id=1, name='a')])))
    with pytest.raises(ValueError, match='empty.json'):
        build(tiny_coco, ann_file=str(empty), split=dict(unseen=[]))
    # A split whose classes have no usable query forms no episode.
    with pytest.raises(ValueError, match='no one-shot episode'):
        build(tiny_coco, query_min_size=1000)
    # Missing image file: the error names the image id.
    ds = build(tiny_coco, data_prefix=dict(img=str(tmp_path / 'nowhere')))
    with pytest.raises(FileNotFoundError, match='target image id'):
        ds[(0, 'x')]


def test_image_grouped_sampler_splits_whole_images(tiny_coco, monkeypatch):
    tds = build(tiny_coco, test_mode=True, episode_classes='all')
    parts = []
    for rank in range(2):
        monkeypatch.setattr(samplers_mod, 'get_dist_info',
                            lambda rank=rank: (rank, 2))
        parts.append(list(ImageGroupedSampler(tds)))
    assert sorted(parts[0] + parts[1]) == list(range(len(tds)))
    imgs = [{tds.get_img_id(i) for i in p} for p in parts]
    assert not imgs[0] & imgs[1]  # no image split across ranks
    assert parts[0] and parts[1]


def test_same_image_batch_sampler(tiny_coco):
    tds = build(tiny_coco, test_mode=True, episode_classes='all')
    batches = list(SameImageBatchSampler(ImageGroupedSampler(tds), 2))
    assert sorted(i for b in batches for i in b) == list(range(len(tds)))
    for b in batches:
        assert len(b) <= 2
        assert len({tds.get_img_id(i) for i in b}) == 1
    assert len(SameImageBatchSampler(ImageGroupedSampler(tds), 2)) == \
        len(batches)


def test_data_root_and_prefix(tiny_coco):
    ds = build(tiny_coco, data_root=tiny_coco['root'],
               ann_file=osp.basename(tiny_coco['ann_file']),
               data_prefix=dict(img=''))
    assert osp.isfile(ds.get_data_info((0, 'x'))['img_path'])


# ----------------------------------------------------------------------
# Data that cannot silently be wrong: unique ids, json sizes = file sizes
# ----------------------------------------------------------------------
def _edited_tiny_coco(tmp_path, edit) -> dict:
    """A fresh copy of the tiny dataset whose json ``edit(data)`` changed."""
    from conftest import write_tiny_coco
    tiny = write_tiny_coco(str(tmp_path))
    with open(tiny['ann_file']) as f:
        data = json.load(f)
    edit(data)
    with open(tiny['ann_file'], 'w') as f:
        json.dump(data, f)
    return tiny


def test_duplicate_image_ids_are_an_error(tmp_path):
    def edit(data):
        # Image 4 takes image 3's id: pycocotools would merge their boxes.
        next(i for i in data['images'] if i['id'] == 4)['id'] = 3
    tiny = _edited_tiny_coco(tmp_path, edit)
    with pytest.raises(ValueError) as err:
        build(tiny)
    msg = str(err.value)
    assert tiny['ann_file'] in msg
    assert '1 duplicate image id(s)' in msg
    assert "3 (file_name ['003.png', '004.png'])" in msg
    assert 'must be unique' in msg


def test_duplicate_annotation_ids_are_an_error(tmp_path):
    def edit(data):
        for ann in data['annotations']:
            if ann['id'] in (104, 110):
                ann['id'] = 103
    tiny = _edited_tiny_coco(tmp_path, edit)
    with pytest.raises(ValueError) as err:
        build(tiny, test_mode=True)
    msg = str(err.value)
    assert tiny['ann_file'] in msg
    assert '1 duplicate annotation id(s)' in msg
    # Annotations 103, 104 (image 2) and 110 (image 4) share id 103.
    assert '103 (image_id [2, 2, 4])' in msg


def _replace_image(tiny: dict, img_id: int, width: int, height: int) -> str:
    """Overwrite the file of ``img_id`` with one of another size (the json
    still says 96x96)."""
    path = osp.join(tiny['root'], f'{img_id:03d}.png')
    import cv2
    cv2.imwrite(path, np.full((height, width, 3), 40, np.uint8))
    return path


@pytest.mark.parametrize('width,height', [(128, 112), (64, 48)])
def test_json_size_differing_from_the_target_file_is_an_error(
        tmp_path, width, height):
    tiny = _edited_tiny_coco(tmp_path, lambda data: None)
    path = _replace_image(tiny, 4, width, height)
    tds = build(tiny, test_mode=True, episode_classes='all')  # lazy: no error
    eps = [tds.get_data_info(i) for i in range(len(tds))]
    bad = next(i for i, ep in enumerate(eps) if ep['img_id'] == 4)
    good = next(i for i, ep in enumerate(eps) if ep['img_id'] != 4 and all(
        q['img_id'] != 4 for q in ep['query_infos']))
    assert tds[good]['inputs']['img'].shape[0] == 3  # right sizes load
    with pytest.raises(ValueError) as err:
        tds[bad]
    msg = str(err.value)
    assert tiny['ann_file'] in msg and path in msg
    assert 'image id 4, target' in msg
    assert f'width x height 96x96 but the decoded file is {width}x{height}' \
        in msg
    assert '"width"/"height" of image id 4' in msg


def test_json_size_differing_from_a_query_file_is_an_error(tmp_path):
    tiny = _edited_tiny_coco(tmp_path, lambda data: None)
    path = _replace_image(tiny, 4, 80, 96)
    tds = build(tiny, test_mode=True, episode_classes='all')
    bad = next(i for i in range(len(tds))
               if tds.get_data_info(i)['img_id'] != 4
               and tds.get_data_info(i)['query_infos'][0]['img_id'] == 4)
    ann_id = tds.get_data_info(bad)['query_infos'][0]['ann_id']
    with pytest.raises(ValueError) as err:
        tds[bad]
    msg = str(err.value)
    assert path in msg and tiny['ann_file'] in msg
    assert f'image id 4, query, annotation id {ann_id}' in msg
    assert '96x96 but the decoded file is 80x96' in msg
    # Training reads the same way.
    ds = build(tiny)
    idx = next(i for i in range(len(ds)) if ds.get_img_id(i) == 4)
    with pytest.raises(ValueError, match='image id 4, target'):
        ds[(idx, 'x')]


def _negative_draws(ds, draws=60):
    """{img_id: set of negative-episode labels} over many training draws;
    checks that a negative episode has no ground truth and that its class
    is absent from the target."""
    classes = ds.metainfo['classes']
    seen = {classes.index(c) for c in ds.metainfo['seen_classes']}
    out = {}
    for idx in range(len(ds)):
        for draw in range(draws):
            ep = ds.get_data_info((idx, f'neg{draw}'))
            if not ep.get('negative'):
                continue
            present = {classes.index(n)
                       for n, _, _ in ds._tiny_boxes[ep['img_id']]}
            assert ep['episode_label'] in seen - present
            assert ep['instances'] == []
            assert all(q['img_id'] != ep['img_id']
                       for q in ep['query_infos'])
            out.setdefault(ep['img_id'], set()).add(ep['episode_label'])
    return out


def test_negative_episodes_uniform_and_look_alike(tiny_coco):
    classes = tiny_coco['classes']
    look = {'c0': ['c3'], 'c1': ['c4'], 'c2': ['c4', 'c5']}
    plain = build(tiny_coco, negative_prob=0.5)
    hard = build(tiny_coco, negative_prob=0.5, look_alikes=look)
    for ds in (plain, hard):
        ds._tiny_boxes = tiny_coco['boxes']
    seen = {classes.index(c) for c in plain.metainfo['seen_classes']}
    got_plain, got_hard = _negative_draws(plain), _negative_draws(hard)
    assert got_plain and got_hard
    for img_id, labels in got_hard.items():
        # c5 is unseen: never a training query, even as a look-alike.
        present = {classes.index(n) for n, _, _ in tiny_coco['boxes'][img_id]}
        expected = {classes.index(n) for p in present
                    for n in look.get(classes[p], ())} & seen - present
        absent = seen - present
        # The absent look-alikes of the target's classes when there are
        # any (each of them drawn), every absent class otherwise.
        assert labels == (expected or absent), (img_id, labels)
        assert got_plain[img_id] == absent, img_id
    # Image 1 (c0, c1) has hard negatives c3, c4; uniform draws also c2.
    assert got_hard[1] == {3, 4} and got_plain[1] == {2, 3, 4}


def test_look_alikes_bad_names_are_named(tiny_coco):
    with pytest.raises(ValueError, match=r"look_alikes.*\['c9'\]"):
        build(tiny_coco, negative_prob=0.5, look_alikes={'c0': ['c9']})
    with pytest.raises(TypeError, match='look_alikes'):
        build(tiny_coco, negative_prob=0.5, look_alikes=['c0'])
    # Without negative episodes they are not used (a base config's list
    # may name other data's classes).
    assert len(build(tiny_coco, look_alikes={'c0': ['c9']})) > 0

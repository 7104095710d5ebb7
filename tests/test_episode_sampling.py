"""The episode-sampling contract (oneshot/datasets/samplers.py,
docs/data_flow.md "Episode sampling"): reading a target's id or size never
draws an episode; aspect-ratio batching forms mmdet's batches without
drawing; the COCO configs use it; the test loop never switches the built
dataset's run."""
import json
import os.path as osp

import pytest
from mmdet.datasets.samplers import AspectRatioBatchSampler
from mmdet.registry import DATASETS
from mmengine.config import Config
from mmengine.registry import init_default_scope

from oneshot.datasets import (EpisodeAspectRatioBatchSampler, EpisodeSampler,
                              OneShotCocoDataset)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
init_default_scope('mmdet')


@pytest.fixture(scope='module')
def mixed_sizes(tmp_path_factory):
    """The tiny dataset with portrait and landscape json sizes (the sizes
    only steer batching here; no image is decoded)."""
    from conftest import write_tiny_coco
    tiny = write_tiny_coco(str(tmp_path_factory.mktemp('mixed')))
    with open(tiny['ann_file']) as f:
        data = json.load(f)
    for i, img in enumerate(data['images']):
        img['width'], img['height'] = (96, 120) if i % 3 == 0 else (120, 96)
    with open(tiny['ann_file'], 'w') as f:
        json.dump(data, f)
    return tiny


def build(tiny, **kw):
    cfg = dict(type='OneShotCocoDataset', ann_file=tiny['ann_file'],
               data_prefix=dict(img=tiny['root']), split=tiny['split'],
               query_min_size=8, pipeline=[])
    cfg.update(kw)
    return DATASETS.build(cfg)


class CountingDataset(OneShotCocoDataset):
    """Counts the episodes drawn (training) through get_data_info."""
    draws = 0

    def get_data_info(self, idx):
        type(self).draws += 1
        return super().get_data_info(idx)


def test_image_readers_never_draw(mixed_sizes, monkeypatch):
    ds = build(mixed_sizes)
    n = len(ds)
    infos = [ds.get_data_info((i, 'x')) for i in range(n)]
    monkeypatch.setattr(ds, '_train_episode', lambda *a: pytest.fail(
        'get_img_id / get_img_size drew an episode'))
    for i, info in enumerate(infos):
        assert ds.get_img_size((i, 'x')) == (info['width'], info['height'])
        assert ds.get_img_size(i) == ds.get_img_size((i, 'y'))
        assert ds.get_img_id((i, 'x')) == info['img_id']


@pytest.mark.parametrize('batch_size', [1, 2, 3])
def test_aspect_ratio_batches_equal_mmdet_without_drawing(
        mixed_sizes, batch_size):
    ds = build(mixed_sizes)
    assert {ds.get_img_size(i)[0] < ds.get_img_size(i)[1]
            for i in range(len(ds))} == {True, False}  # both buckets used
    sampler = EpisodeSampler(ds, shuffle=True, seed=5)
    expected = list(AspectRatioBatchSampler(sampler, batch_size))

    counting = build(mixed_sizes)
    counting.__class__ = CountingDataset
    CountingDataset.draws = 0
    ours = EpisodeAspectRatioBatchSampler(
        EpisodeSampler(counting, shuffle=True, seed=5), batch_size)
    for epoch in range(2):  # the buckets start empty every epoch
        ours.sampler.set_epoch(epoch)
        sampler.set_epoch(epoch)
        expected = list(AspectRatioBatchSampler(sampler, batch_size))
        got = list(ours)
        assert got == expected
        assert isinstance(got[0][0], tuple)  # (idx, draw_seed) pass through
    assert CountingDataset.draws == 0
    assert len(ours) == len(AspectRatioBatchSampler(sampler, batch_size))


def test_drop_last_keeps_only_full_batches(mixed_sizes):
    ds = build(mixed_sizes)
    batches = list(EpisodeAspectRatioBatchSampler(
        EpisodeSampler(ds, shuffle=False), 4, drop_last=True))
    assert batches and all(len(b) == 4 for b in batches)
    assert len(batches) == len(ds) // 4


def test_coco_configs_batch_without_drawing():
    for name in ('configs/_base_/datasets/coco_oneshot.py',
                 'configs/_base_/datasets/voc_oneshot.py'):
        cfg = Config.fromfile(osp.join(REPO, name))
        assert cfg.train_dataloader.batch_sampler.type == \
            'EpisodeAspectRatioBatchSampler', name
        assert cfg.train_dataloader.sampler.type == 'EpisodeSampler'


@pytest.mark.parametrize('diff_rank_seed', [False, True])
def test_test_loop_dataloader_per_run(tmp_path, diff_rank_seed):
    """Each run's dataloader is built like the first one (same seeds, by
    mmengine's own TestLoop constructor) over a copy set to the run; the
    built dataset stays at run 0."""
    from mmengine.runner import Runner
    from test_test_loop import QueryOracle, RunDataset
    dataset = RunDataset()
    runner = Runner(
        model=QueryOracle(), work_dir=str(tmp_path),
        test_dataloader=dict(dataset=dataset, batch_size=2,
                             sampler=dict(type='DefaultSampler',
                                          shuffle=False),
                             collate_fn=dict(type='pseudo_collate')),
        test_evaluator=dict(type='OneShotMetric'),
        test_cfg=dict(type='OneShotTestLoop', runs=3),
        randomness=dict(seed=7, diff_rank_seed=diff_rank_seed),
        default_scope='mmdet')
    loop = runner.test_loop
    first = loop.dataloader
    again = loop.dataloader_for_run(2)
    assert again.dataset is not dataset and again.dataset.run == 2
    assert dataset.run == 0 and first.dataset.run == 0
    assert again.worker_init_fn.keywords == first.worker_init_fn.keywords
    if not diff_rank_seed:  # else each sampler syncs a fresh random seed
        assert again.sampler.seed == first.sampler.seed == 7

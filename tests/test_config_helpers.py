"""Config-time pipeline helper shared by the FPN method configs."""
import copy
import os.path as osp

from mmengine.config import Config
from quickstart_utils import REPO

from oneshot.utils.pipelines import with_input_sizes

COCO_BASE = osp.join(REPO, 'configs/_base_/datasets/coco_oneshot.py')


def test_with_input_sizes_rewrites_only_the_size_steps():
    base = Config.fromfile(COCO_BASE).train_pipeline
    before = copy.deepcopy(base)
    out = with_input_sizes(base, (1024, 1024), 192)
    assert base == before  # input untouched
    types = [step['type'] for step in out]
    assert types == [step['type'] for step in base][:-1] + [
        'Pad', 'PackOneShotInputs'
    ]
    resize = out[types.index('Resize')]
    assert resize['scale'] == (1024, 1024) and resize['keep_ratio']
    query = out[types.index('ResizeQueryPatches')]
    assert query['size'] == 192 and query['center'] and \
        query['flip_prob'] == 0.5
    assert out[types.index('Pad')] == dict(type='Pad', size=(1024, 1024))
    kept = [s for s in out if s['type'] not in ('Resize', 'ResizeQueryPatches',
                                                'Pad')]
    assert kept == [s for s in base
                    if s['type'] not in ('Resize', 'ResizeQueryPatches')]


def test_without_target_scale_only_the_query_size_changes():
    base = Config.fromfile(COCO_BASE).train_pipeline
    out = with_input_sizes(base, None, 200)
    assert len(out) == len(base)
    for step, old in zip(out, base):
        if old['type'] == 'ResizeQueryPatches':
            assert step == dict(old, size=200) and old['size'] != 200
        else:
            assert step == old


def test_fpn_method_configs_use_it_on_their_dataset_base():
    for name, data in (('bhrl/bhrl_r50-fpn_8xb2-9e_voc.py', 'voc_oneshot'),
                       ('siamese-faster-rcnn/siamese-faster-rcnn_r50-fpn_'
                        '8xb2-12e_coco-split1.py', 'coco_oneshot_split1')):
        cfg = Config.fromfile(osp.join(REPO, 'configs', name))
        data_cfg = Config.fromfile(
            osp.join(REPO, 'configs/_base_/datasets', f'{data}.py'))
        for loader, key in (('train_dataloader', 'train_pipeline'),
                            ('test_dataloader', 'test_pipeline')):
            expected = with_input_sizes(data_cfg[key], (1024, 1024), 192)
            assert cfg[loader].dataset.pipeline == expected, (name, loader)

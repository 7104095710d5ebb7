"""OneShotDataPreprocessor: targets exactly as mmdet, queries normalised."""
import copy

import pytest
import torch
from mmdet.models.data_preprocessors import DetDataPreprocessor
from mmdet.testing import demo_mm_inputs

from oneshot.models.data_preprocessors import OneShotDataPreprocessor

MEAN = [123.675, 116.28, 103.53]
STD = [58.395, 57.12, 57.375]


def _preprocessor_cfg(**kwargs) -> dict:
    cfg = dict(mean=MEAN, std=STD, bgr_to_rgb=True, pad_size_divisor=32)
    cfg.update(kwargs)
    return cfg


def _episodes(num_shots=(2, 2), query_size=(48, 48), seed=0):
    """Collated episodes: mmdet demo targets of different sizes + queries."""
    packed = demo_mm_inputs(
        batch_size=len(num_shots),
        image_shapes=[(3, 70, 90), (3, 100, 64), (3, 64, 64)][:len(num_shots)],
        num_items=[2] * len(num_shots),
        num_classes=2)
    gen = torch.Generator().manual_seed(seed)
    queries = [
        torch.randint(0, 256, (k, 3, s, s), generator=gen, dtype=torch.uint8)
        for k, s in zip(num_shots, query_size)
    ]
    for i, sample in enumerate(packed['data_samples']):
        sample.set_metainfo(dict(episode_id=10 + i, img_id=100 + i))
    return dict(
        inputs=dict(img=packed['inputs'], query=queries),
        data_samples=packed['data_samples'])


def test_targets_match_det_data_preprocessor():
    data = _episodes()
    reference = DetDataPreprocessor(**_preprocessor_cfg())(
        dict(
            inputs=copy.deepcopy(data['inputs']['img']),
            data_samples=copy.deepcopy(data['data_samples'])))
    out = OneShotDataPreprocessor(**_preprocessor_cfg())(data)

    img = out['inputs']['img']
    assert img.shape == (2, 3, 128, 96)  # padded to multiples of 32
    assert torch.equal(img, reference['inputs'])
    for ours, theirs in zip(out['data_samples'], reference['data_samples']):
        assert ours.batch_input_shape == theirs.batch_input_shape == (128, 96)
        assert ours.pad_shape == theirs.pad_shape
        assert torch.equal(ours.gt_instances.bboxes,
                           theirs.gt_instances.bboxes)


def test_queries_flipped_normalised_and_stacked():
    data = _episodes(num_shots=(3, 3))
    raw = [q.clone() for q in data['inputs']['query']]
    out = OneShotDataPreprocessor(**_preprocessor_cfg())(data)

    query = out['inputs']['query']
    assert query.shape == (2, 3, 3, 48, 48)
    assert query.dtype == torch.float32
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    for i, q in enumerate(raw):
        expected = (q[:, [2, 1, 0]].float() - mean) / std  # BGR -> RGB
        torch.testing.assert_close(query[i], expected)


def test_queries_without_channel_flip_or_normalisation():
    data = _episodes(num_shots=(1, 1))
    raw = [q.clone() for q in data['inputs']['query']]
    out = OneShotDataPreprocessor()(data)  # no mean/std, no flip
    assert torch.equal(out['inputs']['query'],
                       torch.stack([q.float() for q in raw]))


def test_batch_augments_touch_targets_only():
    data = _episodes()
    prep = OneShotDataPreprocessor(**_preprocessor_cfg(
        batch_augments=[dict(type='BatchFixedSizePad', size=(160, 160))]))
    train_out = prep(copy.deepcopy(data), training=True)
    assert train_out['inputs']['img'].shape == (2, 3, 160, 160)
    assert train_out['inputs']['query'].shape == (2, 2, 3, 48, 48)
    # Batch augments are training-time only, as in mmdet.
    test_out = prep(copy.deepcopy(data), training=False)
    assert test_out['inputs']['img'].shape == (2, 3, 128, 96)
    torch.testing.assert_close(train_out['inputs']['query'],
                               test_out['inputs']['query'])


def test_already_stacked_queries_are_accepted():
    data = _episodes()
    stacked = copy.deepcopy(data)
    stacked['inputs']['query'] = torch.stack(stacked['inputs']['query'])
    prep = OneShotDataPreprocessor(**_preprocessor_cfg())
    torch.testing.assert_close(prep(stacked)['inputs']['query'],
                               prep(data)['inputs']['query'])


@pytest.mark.parametrize('num_shots,query_size,bad', [
    ((1, 2), (48, 48), 'K=2'),
    ((2, 2), (48, 32), '(32, 32)'),
])
def test_mismatched_queries_name_the_episodes(num_shots, query_size, bad):
    data = _episodes(num_shots=num_shots, query_size=query_size)
    with pytest.raises(ValueError) as err:
        OneShotDataPreprocessor(**_preprocessor_cfg())(data)
    message = str(err.value)
    assert 'episode_id=10' in message and 'episode_id=11' in message
    assert bad in message


def test_plain_image_inputs_are_rejected():
    data = _episodes()
    data['inputs'] = data['inputs']['img']
    with pytest.raises(TypeError, match='PackOneShotInputs'):
        OneShotDataPreprocessor(**_preprocessor_cfg())(data)


def test_query_with_wrong_rank_is_rejected():
    data = _episodes()
    data['inputs']['query'] = [q[0] for q in data['inputs']['query']]
    with pytest.raises(ValueError, match=r'expected \(K, 3, S, S\)'):
        OneShotDataPreprocessor(**_preprocessor_cfg())(data)

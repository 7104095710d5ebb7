"""mmdet's OHEM sampler inside the query-aware RoI heads: the hard examples
of an episode are mined with *that episode's* query."""
import os.path as osp

import pytest
import torch
from mmdet.models.task_modules.samplers import OHEMSampler
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox2roi
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.structures import InstanceData

import oneshot  # noqa: F401  (registers the oneshot modules)
from oneshot.models.roi_heads.query_aware_roi_head import select_episode

from test_detector import _batch, _sample, _uint8

CONFIG_DIR = osp.join(osp.dirname(__file__), '..', 'configs', 'quickstart')
# Every method whose RoI head is a QueryAwareRoIHead.
METHODS = ['coae', 'bhrl', 'ait', 'matching-fcos-sarm']
OHEM = dict(type='OHEMSampler', num=12, pos_fraction=0.25,
            add_gt_as_proposals=True)


@pytest.fixture(autouse=True)
def _mmdet_scope():
    register_all_modules(init_default_scope=True)


def _model(method: str, seed: int = 0):
    cfg = Config.fromfile(
        osp.join(CONFIG_DIR, f'{method}_r18-tiny_synthetic.py'))
    cfg.merge_from_dict(
        dict(model=dict(train_cfg=dict(rcnn=dict(sampler=OHEM)))))
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model).train()
    # The co-attention matchers start as the identity; any non-trivial
    # start makes the query matter to the maps as well.
    for module in model.modules():
        if isinstance(module, torch.nn.GroupNorm) and module.affine:
            torch.nn.init.normal_(module.weight, 1.0, 0.3)
        # (AIT's transformer: dropout would make the mining pass and the
        # independent recomputation draw different masks.)
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        if isinstance(module, torch.nn.MultiheadAttention):
            module.dropout = 0.0
    return model


def _episodes(model):
    """Two episodes on one target image (same maps), different queries."""
    img = _uint8((3, 96, 128), 0)
    queries = [_uint8((1, 3, 64, 64), 1), _uint8((1, 3, 64, 64), 2)]
    samples = [_sample(1, (96, 128), label=i, query_ann_ids=[7 + i])
               for i in range(2)]
    return _batch(model, [img, img.clone()], queries, samples, training=True)


def _proposals(gt: torch.Tensor, num: int = 40, seed: int = 3):
    """Random boxes plus jittered copies of the ground truth."""
    gen = torch.Generator().manual_seed(seed)
    xy = torch.rand(num, 2, generator=gen) * torch.tensor([100., 70.])
    wh = 8 + torch.rand(num, 2, generator=gen) * 30
    boxes = torch.cat([xy, xy + wh], dim=1)
    near = gt.repeat(6, 1) + torch.randn(6 * len(gt), 4, generator=gen)
    return InstanceData(bboxes=torch.cat([boxes, near]),
                        scores=torch.rand(num + len(near), generator=gen))


class _Recorder:
    """Records what every OHEMSampler.sample call returns and the scores
    each of its hard-mining passes ranked (``bbox_head.loss`` with
    ``reduction_override='none'``), with the episode being sampled."""

    def __init__(self, monkeypatch, bbox_head):
        self.results, self.mined = [], []
        sample, loss = OHEMSampler.sample, bbox_head.loss

        def recording_sample(sampler, *args, **kwargs):
            result = sample(sampler, *args, **kwargs)
            self.results.append(result)
            return result

        def recording_loss(*args, **kwargs):
            if kwargs.get('reduction_override') == 'none':
                self.mined.append((len(self.results), kwargs['rois'],
                                   kwargs['cls_score']))
            return loss(*args, **kwargs)

        monkeypatch.setattr(OHEMSampler, 'sample', recording_sample)
        monkeypatch.setattr(bbox_head, 'loss', recording_loss)


def _hardest_negatives(head, maps, rois_boxes, neg_mask, query, episode,
                       num_neg):
    """Independently: the background loss of every candidate box of
    ``episode`` scored in the full batch (RoI column 0 = ``episode``,
    the head's own ``_bbox_forward`` with all episodes' query rows)."""
    rois = bbox2roi([rois_boxes])
    rois[:, 0] = episode
    with torch.no_grad():
        scores = head._bbox_forward(maps, rois, query)['cls_score']
    labels = torch.full((len(rois),), head.bbox_head.num_classes,
                        dtype=torch.long)
    loss = torch.nn.functional.cross_entropy(scores, labels,
                                             reduction='none')
    loss[~neg_mask] = -1
    return set(loss.topk(num_neg).indices.tolist())


@pytest.mark.parametrize('method', METHODS)
def test_ohem_mines_each_episode_with_its_own_query(method, monkeypatch):
    model = _model(method)
    data = _episodes(model)
    feats = model.extract_episode_feat(data['inputs'], data['data_samples'])
    gt = data['data_samples'][0].gt_instances.bboxes
    proposals = [_proposals(gt), _proposals(gt)]
    # (StandardRoIHead.loss renames the proposals' bboxes to priors.)
    proposal_boxes = [p.bboxes.clone() for p in proposals]
    head = model.roi_head
    recorder = _Recorder(monkeypatch, head.bbox_head)
    losses = head.loss(tuple(feats.roi), proposals, data['data_samples'],
                       query_feats=feats.query, target_feats=feats.target)
    assert torch.isfinite(losses['loss_cls']).all()
    assert len(recorder.results) == 2  # one mining per episode

    maps = head._proposal_maps(tuple(feats.roi), feats.target)
    query = head.encode_query(feats.query)
    for episode, result in enumerate(recorder.results):
        # The candidates the sampler saw: ground truth first, then the
        # proposals (add_gt_as_proposals); negatives where gt_inds == 0.
        boxes = torch.cat([gt, proposal_boxes[episode]])
        assign = head.bbox_assigner.assign(
            InstanceData(priors=boxes),
            data['data_samples'][episode].gt_instances)
        neg_mask = assign.gt_inds == 0
        num_neg = len(result.neg_inds)
        assert neg_mask.sum() > num_neg  # so OHEM really had to choose
        expected = _hardest_negatives(head, maps, boxes, neg_mask, query,
                                      episode, num_neg)
        assert set(result.neg_inds.tolist()) == expected, episode

    # Every mining pass (positives and negatives of both episodes) scored
    # its RoIs as the full batch scores them for that episode's query, and
    # not as with the other episode's query on the same maps.
    assert sorted({episode for episode, _, _ in recorder.mined}) == [0, 1]
    swapped = select_episode(query, 1), select_episode(query, 0)
    swapped = torch.cat(swapped) if isinstance(query, torch.Tensor) \
        else type(query)(*map(torch.cat, zip(*swapped)))
    for episode, rois, cls_score in recorder.mined:
        assert (rois[:, 0] == 0).all()
        rois = rois.clone()
        rois[:, 0] = episode
        with torch.no_grad():
            right = head._bbox_forward(maps, rois, query)['cls_score']
            wrong = head._bbox_forward(maps, rois, swapped)['cls_score']
        torch.testing.assert_close(cls_score, right)
        assert not torch.allclose(cls_score, wrong, atol=1e-5)


@pytest.mark.parametrize('method', METHODS)
def test_ohem_training_step_reaches_every_head_parameter(method):
    model = _model(method)
    losses = model(mode='loss', **_episodes(model))
    total, _ = model.parse_losses(losses)
    total.backward()
    for name, param in model.roi_head.bbox_head.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_select_episode_slices_tensors_and_named_tuples():
    from oneshot.models.roi_heads.adaptive_image_transformer import \
        QueryMemory
    memory = QueryMemory(torch.arange(6.).view(3, 2), torch.ones(3, 1))
    picked = select_episode(memory, 1)
    assert isinstance(picked, QueryMemory)
    assert picked.tokens.tolist() == [[2., 3.]] and picked.pos.shape == (1, 1)
    assert select_episode(torch.arange(3), 2).tolist() == [2]
    with pytest.raises(TypeError, match='encode_query'):
        select_episode([1, 2], 0)

"""Align the target's in-context object features with query embeddings."""
from typing import Dict, Sequence

import torch
import torch.nn.functional as F
from mmcv.ops import roi_align
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from torch import Tensor, nn


def pooled_box_embeddings(feats: Sequence[Tensor], rois: Tensor,
                          strides: Sequence[int],
                          roi_size: int = 7) -> Tensor:
    """L2-normalised embeddings of boxes on per-level maps.

    Each level is RoI-aligned (``roi_size`` x ``roi_size``, average) and
    averaged over the bins; the levels are concatenated, then normalised.

    Args:
        feats (Sequence[Tensor]): Per level ``(B, C_l, H_l, W_l)``.
        rois (Tensor): ``(N, 5)`` rows ``(batch index, x1, y1, x2, y2)`` in
            input pixels.
        strides (Sequence[int]): Stride of each level.
        roi_size (int): RoIAlign output side.

    Returns:
        Tensor: ``(N, sum C_l)``.
    """
    pooled = [
        roi_align(feat, rois, roi_size, 1.0 / stride, 0, 'avg',
                  True).mean(dim=(2, 3))
        for feat, stride in zip(feats, strides)
    ]
    return F.normalize(torch.cat(pooled, dim=1), dim=1)


def pooled_embedding(feats: Sequence[Tensor]) -> Tensor:
    """Per level ``(N, C, h, w)`` features -> ``(N, sum of C)``: every
    level averaged over space, concatenated, L2-normalised (the query
    embedding here and in ``oneshot.apis.verification``)."""
    pooled = torch.cat([f.flatten(2).mean(dim=2) for f in feats], dim=1)
    return F.normalize(pooled, dim=1)


@MODELS.register_module()
class QueryAlignmentLoss(nn.Module):
    """Contrast each target object's in-context features with the queries.

    A training-only auxiliary loss of the project, not part of any paper's
    method (the README's quickstart section gives what it measured). The
    matchers compare target features, computed in the clutter of the whole
    image, with query features computed on a crop; nothing in the
    detection losses asks the two to describe an object the same way.
    This loss does: for every ground-truth box ``k`` of episode ``i``, its
    embedding ``r_k`` (the target maps RoI-aligned at the box, pooled per
    level, concatenated, normalised) is contrasted with the query
    embeddings ``q_j`` of all B episodes of the batch (pooled per level,
    concatenated, normalised):

        loss_k = -log( sum_{j: c_j = c_i} exp(r_k . q_j / t)
                       / sum_j exp(r_k . q_j / t) )

    where ``c_j`` is episode j's class (``episode_label`` metainfo) and
    ``t`` the temperature: the target's objects of the query's class must
    be closer to that query than to the queries of the other classes. A
    box whose batch holds no other class contributes zero; the loss is the
    mean over boxes (zero, still in the graph, when there is none).

    Args:
        strides (Sequence[int]): Stride of each target/query feature level
            (the neck's; the RoI extractor's ``featmap_strides``).
        temperature (float): Softmax temperature. Defaults to 0.1.
        roi_size (int): RoIAlign output side. Defaults to 7.
        loss_weight (float): Weight of the loss. Defaults to 1.0.
    """

    def __init__(self,
                 strides: Sequence[int],
                 temperature: float = 0.1,
                 roi_size: int = 7,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if not strides or any(s <= 0 for s in strides):
            raise ValueError(f'QueryAlignmentLoss: strides must be positive '
                             f'feature-level strides, got {strides!r}.')
        if temperature <= 0:
            raise ValueError('QueryAlignmentLoss: temperature must be > 0, '
                             f'got {temperature}.')
        self.strides = tuple(strides)
        self.temperature = temperature
        self.roi_size = roi_size
        self.loss_weight = loss_weight

    def forward(self, target_feats: Sequence[Tensor],
                query_feats: Sequence[Tensor],
                data_samples: SampleList) -> Dict[str, Tensor]:
        """Args:
            target_feats (Sequence[Tensor]): Per level ``(B, C, H, W)``,
                one row per episode, before the matcher.
            query_feats (Sequence[Tensor]): Per level ``(B, C, h, w)``,
                K-fused, before the matcher.
            data_samples (list[DetDataSample]): ``gt_instances.bboxes`` in
                input pixels and the ``episode_label`` metainfo.

        Returns:
            dict: ``loss_query_align``.
        """
        if len(target_feats) != len(self.strides) or \
                len(query_feats) != len(self.strides):
            raise ValueError(
                f'QueryAlignmentLoss has strides {list(self.strides)} but got '
                f'{len(target_feats)} target and {len(query_feats)} query '
                'feature levels; set query_align_loss.strides to the neck\'s '
                'strides.')
        labels = []
        for i, sample in enumerate(data_samples):
            if 'episode_label' not in sample.metainfo:
                raise KeyError(
                    f'QueryAlignmentLoss needs the episode_label metainfo '
                    f'(episode {i}, img_id={sample.metainfo.get("img_id")}); '
                    'PackOneShotInputs sets it.')
            labels.append(int(sample.metainfo['episode_label']))
        device = target_feats[0].device
        labels_t = torch.tensor(labels, device=device)
        rois = []
        for i, sample in enumerate(data_samples):
            boxes = sample.gt_instances.bboxes
            boxes = getattr(boxes, 'tensor', boxes)
            if len(boxes):
                rois.append(torch.cat(
                    [boxes.new_full((len(boxes), 1), i), boxes], dim=1))
        if not rois:
            zero = sum(f.sum() for f in target_feats) * 0.
            return dict(loss_query_align=zero)
        rois = torch.cat(rois).to(target_feats[0].dtype)
        box_emb = pooled_box_embeddings(target_feats, rois, self.strides,
                                        self.roi_size)
        query_emb = pooled_embedding(query_feats)
        logits = box_emb @ query_emb.t() / self.temperature
        box_labels = labels_t[rois[:, 0].long()]
        positive = box_labels[:, None] == labels_t[None, :]
        loss = (torch.logsumexp(logits, dim=1) - torch.logsumexp(
            logits.masked_fill(~positive, float('-inf')), dim=1))
        return dict(loss_query_align=self.loss_weight * loss.mean())

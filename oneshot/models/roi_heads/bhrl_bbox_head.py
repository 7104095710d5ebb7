"""BHRL's instance-level hierarchical relation and its bbox head."""
import math
from typing import Tuple

import torch
from mmcv.cnn import ConvModule
from mmdet.models.roi_heads.bbox_heads import ConvFCBBoxHead
from mmdet.registry import MODELS
from mmdet.utils import OptConfigType, OptMultiConfig
from mmengine.model import BaseModule
from torch import Tensor, nn


class InstanceHierarchicalRelation(BaseModule):
    """Relate every proposal's RoI feature to its episode's query feature.

    The instance-level hierarchical relation (IHR) of BHRL (Yang et al.,
    "Balanced and Hierarchical Relation Learning for One-shot Object
    Detection", CVPR 2022). With ``t`` a target RoI feature and ``q`` the
    query's RoI feature (both ``C x 7 x 7``):

    (a) contrastive relation ``|GAP(q) - t|``: small in every channel where
        the proposal looks like the query on average;
    (b) salient relation ``t * GAP(q)``: a depth-wise correlation of ``t``
        with the 1x1 kernel ``GAP(q)`` (one weight per channel), which
        stresses the channels the query activates;
    (c) attention relation ``|A(t, q) - t|`` where ``A`` is non-local
        cross-attention: 3x3 key convs (``C -> key_channels``) on ``t`` and
        on ``q``, affinity ``softmax(k_t^T k_q / sqrt(key_channels))`` over
        the query positions, values = ``q`` itself. ``A(t, q)`` rebuilds
        every proposal position from the query positions it resembles, so
        the difference stays small where the proposal's parts all have a
        counterpart in the query, whatever their spatial arrangement.

    Each relation goes through a 1x1 conv (+ ReLU) to ``relation_channels``.
    (a) and (b) are fused by a sum: both are per-channel comparisons with
    the same global query vector and the following 1x1 conv is linear in
    its inputs, so a sum (rather than a concatenation) fuses them without a
    second weight block for an input of the same kind. The fused map, (c)
    and ``t`` itself (the proposal's appearance, which a relation alone
    would lose) are concatenated and a 1x1 conv (+ ReLU) gives
    ``out_channels`` (384 in BHRL).

    Query-only work (``GAP(q)`` and the query's attention keys) runs once
    per episode in :meth:`encode_query`; proposals index their episode's
    row.

    Args:
        in_channels (int): Channels ``C`` of ``t`` and ``q`` (FPN width,
            256 in BHRL).
        relation_channels (int): Output of each relation's 1x1 conv.
            Defaults to 128.
        key_channels (int): Attention key width. Defaults to 32.
        out_channels (int): Channels of the fused relation feature.
            Defaults to 384.
        act_cfg (dict, optional): Activation after the 1x1 convs. Defaults
            to ReLU.
        init_cfg (dict, optional): Initialisation config.

    Shapes:
        ``forward(target, query, query_inds)``: ``(N, C, s, s)``,
        ``(B, C, s, s)`` and ``(N,)`` (episode of each RoI) ->
        ``(N, out_channels, s, s)``.
    """

    def __init__(self,
                 in_channels: int = 256,
                 relation_channels: int = 128,
                 key_channels: int = 32,
                 out_channels: int = 384,
                 act_cfg: OptConfigType = dict(type='ReLU'),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_channels = in_channels
        self.key_channels = key_channels

        def conv1x1(cin: int, cout: int) -> ConvModule:
            return ConvModule(cin, cout, 1, act_cfg=act_cfg)

        self.contrastive_conv = conv1x1(in_channels, relation_channels)
        self.salient_conv = conv1x1(in_channels, relation_channels)
        self.target_key_conv = nn.Conv2d(
            in_channels, key_channels, 3, padding=1)
        self.query_key_conv = nn.Conv2d(
            in_channels, key_channels, 3, padding=1)
        self.attention_conv = conv1x1(in_channels, relation_channels)
        self.fusion_conv = conv1x1(2 * relation_channels + in_channels,
                                   out_channels)

    def encode_query(self, query: Tensor) -> Tuple[Tensor, Tensor]:
        """Query-only terms, once per episode.

        Args:
            query (Tensor): Query RoI features ``(B, C, s, s)``.

        Returns:
            tuple[Tensor, Tensor]: ``GAP(q)`` ``(B, C, 1, 1)`` and the
            attention keys ``(B, key_channels, s*s)``.
        """
        query_gap = query.mean(dim=(2, 3), keepdim=True)
        query_key = self.query_key_conv(query).flatten(2)
        return query_gap, query_key

    def contrastive_relation(self, target: Tensor,
                             query_gap: Tensor) -> Tensor:
        """(a) ``conv(|GAP(q) - t|)``: ``(N, C, s, s)``, ``(N, C, 1, 1)`` ->
        ``(N, relation_channels, s, s)``."""
        return self.contrastive_conv((query_gap - target).abs())

    def salient_relation(self, target: Tensor, query_gap: Tensor) -> Tensor:
        """(b) ``conv(t * GAP(q))``, the depth-wise correlation of ``t`` with
        the per-channel kernel ``GAP(q)``: ``(N, C, s, s)``,
        ``(N, C, 1, 1)`` -> ``(N, relation_channels, s, s)``."""
        return self.salient_conv(target * query_gap)

    def attention_relation(self, target: Tensor, query: Tensor,
                           query_key: Tensor) -> Tensor:
        """(c) ``conv(|A(t, q) - t|)`` with non-local cross-attention ``A``.

        Args:
            target (Tensor): ``(N, C, s, s)``.
            query (Tensor): Query RoI features of each RoI's episode,
                ``(N, C, s', s')`` (the attention values).
            query_key (Tensor): Their keys ``(N, key_channels, s'*s')``.

        Returns:
            Tensor: ``(N, relation_channels, s, s)``.
        """
        target_key = self.target_key_conv(target).flatten(2)
        affinity = torch.einsum('ndp,ndq->npq', target_key, query_key)
        affinity = (affinity / math.sqrt(self.key_channels)).softmax(dim=-1)
        attended = torch.einsum('npq,ncq->ncp', affinity, query.flatten(2))
        attended = attended.view_as(target)
        return self.attention_conv((attended - target).abs())

    def forward(self, target: Tensor, query: Tensor,
                query_inds: Tensor) -> Tensor:
        """Relate every RoI to its episode's query.

        Args:
            target (Tensor): Target RoI features ``(N, C, s, s)``.
            query (Tensor): Query RoI features ``(B, C, s, s)``, one per
                episode.
            query_inds (Tensor): Long ``(N,)``, the episode of each RoI
                (the batch column of the rois).

        Returns:
            Tensor: ``(N, out_channels, s, s)``.
        """
        if target.shape[1] != self.in_channels or \
                query.shape[1] != self.in_channels:
            raise ValueError(
                'InstanceHierarchicalRelation: in_channels='
                f'{self.in_channels} but target RoI features have '
                f'{target.shape[1]} and query features {query.shape[1]} '
                'channels; set bbox_head.in_channels to the FPN width '
                '(neck.out_channels).')
        query_gap, query_key = self.encode_query(query)
        query_gap = query_gap[query_inds]
        contrastive = self.contrastive_relation(target, query_gap)
        salient = self.salient_relation(target, query_gap)
        attention = self.attention_relation(target, query[query_inds],
                                            query_key[query_inds])
        return self.fusion_conv(
            torch.cat([contrastive + salient, attention, target], dim=1))


@MODELS.register_module()
class BHRLBBoxHead(ConvFCBBoxHead):
    """BHRL bbox head: hierarchical relation, 2 shared FCs, fg/bg + box.

    The proposal's RoI feature and its episode's query RoI feature go
    through :class:`InstanceHierarchicalRelation` (to ``fused_channels``),
    then mmdet's ``ConvFCBBoxHead`` with ``num_shared_fcs`` FC layers of
    ``fc_out_channels`` gives the class scores (``num_classes=1``: the
    query's class vs background) and class-agnostic box deltas when
    ``reg_class_agnostic=True``. Training targets, losses and
    post-processing are mmdet's; any softmax ``loss_cls`` works, BHRL uses
    ``RatioPreservingLoss``.

    Args:
        in_channels (int): Channels of target and query RoI features (the
            FPN width; 256 in BHRL).
        relation_channels (int): Width of each relation branch. Defaults
            to 128.
        key_channels (int): Attention key width. Defaults to 32.
        fused_channels (int): Width of the fused relation feature, the
            input of the FCs. Defaults to 384.
        num_shared_fcs (int): Shared FC layers. Defaults to 2.
        fc_out_channels (int): FC width. Defaults to 1024.
        relation_act_cfg (dict, optional): Activation of the relation
            convs. Defaults to ReLU.
        **kwargs: ``BBoxHead`` arguments (``roi_feat_size``,
            ``num_classes``, ``bbox_coder``, ``reg_class_agnostic``,
            ``loss_cls``, ``loss_bbox``, ...).

    Shapes:
        ``forward(x, query_feats, query_inds)``: ``(N, C, s, s)``,
        ``(B, C, s, s)``, ``(N,)`` -> ``cls_score`` ``(N, num_classes + 1)``
        and ``bbox_pred`` ``(N, 4)`` (class-agnostic).
    """

    def __init__(self,
                 in_channels: int = 256,
                 relation_channels: int = 128,
                 key_channels: int = 32,
                 fused_channels: int = 384,
                 num_shared_fcs: int = 2,
                 fc_out_channels: int = 1024,
                 relation_act_cfg: OptConfigType = dict(type='ReLU'),
                 **kwargs) -> None:
        super().__init__(
            num_shared_fcs=num_shared_fcs,
            fc_out_channels=fc_out_channels,
            in_channels=fused_channels,
            **kwargs)
        self.relation = InstanceHierarchicalRelation(
            in_channels=in_channels,
            relation_channels=relation_channels,
            key_channels=key_channels,
            out_channels=fused_channels,
            act_cfg=relation_act_cfg)

    def forward(self, x: Tensor, query_feats: Tensor,
                query_inds: Tensor) -> Tuple[Tensor, Tensor]:
        """Score proposals against their episode's query.

        Args:
            x (Tensor): Target RoI features ``(N, C, s, s)``.
            query_feats (Tensor): Query RoI features ``(B, C, s, s)``.
            query_inds (Tensor): Long ``(N,)``, episode of each RoI.

        Returns:
            tuple[Tensor, Tensor]: ``cls_score`` ``(N, num_classes + 1)``
            and ``bbox_pred`` ``(N, 4)`` or ``(N, 4 * num_classes)``.
        """
        return super().forward(self.relation(x, query_feats, query_inds))

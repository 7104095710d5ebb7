"""Query-aware box head of CoAE: proposal feature + query feature."""
from typing import Optional

import torch
from mmdet.models.roi_heads.bbox_heads import BBoxHead
from mmdet.registry import MODELS
from mmdet.utils import OptConfigType
from torch import Tensor, nn


@MODELS.register_module()
class CoAEBBoxHead(BBoxHead):
    """Classify proposals against the query; regress from the proposal.

    CoAE (Hsieh et al., NeurIPS 2019). Every RoI feature map and the
    episode's query map are globally average-pooled (after the C4 shared
    head, layer4, in :class:`CoAERoIHead`). The classifier sees
    ``cat(proposal, query)`` through the paper's two linear layers,
    ``Linear(in + query, cls_hidden_channels) -> Linear(hidden, 2)``
    (4096 -> 8 -> 2 for ResNet-50-C4), with no non-linearity in between as
    in the paper: the narrow layer is a low-rank bottleneck, and whether a
    proposal matches the query is decided mostly by the co-excited features
    it is pooled from. Box regression is class-agnostic and uses the
    proposal feature alone (the box of an object does not depend on the
    query).

    The optional margin ranking loss (``loss_rank``) is added to the
    cross-entropy over the foreground probabilities of the sampled RoIs of
    each image (:class:`~oneshot.models.losses.MarginRankingLoss`).

    Args:
        in_channels (int): Channels of the pooled proposal feature
            (2048 after layer4). Defaults to 2048.
        query_channels (int, optional): Channels of the pooled query
            feature. Defaults to ``in_channels`` (same shared head).
        cls_hidden_channels (int): Width of the classifier's first linear
            layer. Defaults to 8 (paper).
        loss_rank (dict, optional): Ranking loss config, e.g.
            ``dict(type='MarginRankingLoss', margin=0.3, loss_weight=3.0)``;
            ``None`` disables it.
        **kwargs: :class:`mmdet.models.roi_heads.BBoxHead` arguments
            (``num_classes``, ``bbox_coder``, ``reg_class_agnostic``,
            ``loss_cls``, ``loss_bbox``, ...). ``with_avg_pool`` is always
            True: proposal and query maps differ in size and are compared
            after global average pooling.

    Shapes:
        ``forward(roi_feats, query_embeds, query_inds=None)``:
        ``roi_feats`` ``(n, in_channels, s, s)`` and ``query_embeds``
        ``(n, query_channels)`` (the episode's query feature of each RoI),
        or ``(B, query_channels)`` (one per episode) with ``query_inds``
        ``(n,)`` (each RoI's episode) -> ``cls_score``
        ``(n, num_classes + 1)``, ``bbox_pred`` ``(n, 4)`` (class-agnostic)
        or ``(n, 4 * num_classes)``.
    """

    def __init__(self,
                 in_channels: int = 2048,
                 query_channels: Optional[int] = None,
                 cls_hidden_channels: int = 8,
                 loss_rank: OptConfigType = dict(
                     type='MarginRankingLoss', margin=0.3, loss_weight=3.0),
                 **kwargs) -> None:
        if not kwargs.pop('with_avg_pool', True):
            raise ValueError(
                'CoAEBBoxHead: with_avg_pool=False is not supported; the '
                'head compares globally pooled proposal and query features. '
                'Remove with_avg_pool from the bbox_head config.')
        super().__init__(with_avg_pool=True, in_channels=in_channels,
                         **kwargs)
        if not self.with_cls:
            raise ValueError('CoAEBBoxHead needs with_cls=True: it scores '
                             'proposals against the query.')
        if self.custom_cls_channels or getattr(self.loss_cls, 'use_sigmoid',
                                               False):
            raise ValueError(
                'CoAEBBoxHead expects a softmax classifier (loss_cls='
                "dict(type='CrossEntropyLoss', use_sigmoid=False)); its "
                'ranking loss reads foreground probabilities from a softmax '
                'over num_classes + 1 scores.')
        self.query_channels = query_channels or in_channels
        self.cls_hidden_channels = cls_hidden_channels
        # Replaces BBoxHead's single linear classifier; the name keeps
        # BBoxHead's default init (Normal std 0.01 on fc_cls).
        self.fc_cls = nn.Sequential(
            nn.Linear(in_channels + self.query_channels, cls_hidden_channels),
            nn.Linear(cls_hidden_channels, self.num_classes + 1))
        self.loss_rank = MODELS.build(loss_rank) if loss_rank else None

    @staticmethod
    def pool(feats: Tensor) -> Tensor:
        """Global average pooling ``(n, C, h, w) -> (n, C)`` of a proposal
        or query map (any spatial size)."""
        return feats.mean(dim=(2, 3)) if feats.dim() == 4 else feats

    def forward(self,
                roi_feats: Tensor,
                query_embeds: Tensor,
                query_inds: Optional[Tensor] = None) -> tuple:
        """Score each RoI against its episode's query.

        Args:
            roi_feats (Tensor): ``(n, in_channels, s, s)`` RoI features.
            query_embeds (Tensor): ``(n, query_channels)``, the pooled
                query feature of each RoI's episode; with ``query_inds``
                ``(B, query_channels)``, one row per episode.
            query_inds (Tensor, optional): ``(n,)`` long, each RoI's row of
                ``query_embeds`` (what :class:`QueryAwareRoIHead` passes).

        Returns:
            tuple[Tensor, Tensor]: ``cls_score`` ``(n, num_classes + 1)``
            and ``bbox_pred`` ``(n, 4)`` (or ``None`` without regression).
        """
        proposal = self.pool(roi_feats)
        if query_inds is not None:
            query_embeds = query_embeds[query_inds]
        if query_embeds.shape != (proposal.shape[0], self.query_channels):
            raise ValueError(
                f'CoAEBBoxHead: query_embeds {tuple(query_embeds.shape)} '
                f'should be (num_rois={proposal.shape[0]}, query_channels='
                f'{self.query_channels}); set query_channels to the pooled '
                'query width.')
        cls_score = self.fc_cls(torch.cat([proposal, query_embeds], dim=1))
        bbox_pred = self.fc_reg(proposal) if self.with_reg else None
        return cls_score, bbox_pred

    def loss(self,
             cls_score: Tensor,
             bbox_pred: Tensor,
             rois: Tensor,
             labels: Tensor,
             label_weights: Tensor,
             bbox_targets: Tensor,
             bbox_weights: Tensor,
             reduction_override: Optional[str] = None) -> dict:
        """BBoxHead's losses plus ``loss_rank`` when enabled.

        Args:
            cls_score (Tensor): ``(n, num_classes + 1)``.
            bbox_pred (Tensor): ``(n, 4)`` box deltas.
            rois (Tensor): ``(n, 5)``, column 0 the image (episode) index.
            labels (Tensor): ``(n,)`` targets, ``num_classes`` = background.
            label_weights, bbox_targets, bbox_weights (Tensor): As in
                :meth:`BBoxHead.loss`.
            reduction_override (str, optional): As in BBoxHead.

        Returns:
            dict[str, Tensor]: ``loss_cls``, ``acc``, ``loss_bbox`` and,
            with a ranking loss, ``loss_rank``.
        """
        losses = super().loss(cls_score, bbox_pred, rois, labels,
                              label_weights, bbox_targets, bbox_weights,
                              reduction_override)
        if self.loss_rank is not None and cls_score is not None:
            valid = label_weights > 0
            # Background is the last of the softmax's num_classes + 1 scores.
            fg_score = 1 - cls_score.softmax(dim=1)[:, -1]
            foreground = (labels >= 0) & (labels < self.num_classes)
            losses['loss_rank'] = self.loss_rank(
                fg_score[valid], foreground[valid], rois[valid, 0].long())
        return losses

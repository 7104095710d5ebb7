"""Box head of the structure-aware relation module (SARM)."""
from typing import Optional, Tuple

from mmcv.cnn import ConvModule, build_activation_layer, build_norm_layer
from mmdet.models.roi_heads.bbox_heads import ConvFCBBoxHead
from mmdet.registry import MODELS
from mmdet.utils import OptConfigType
from torch import Tensor, nn


@MODELS.register_module()
class SARMBBoxHead(ConvFCBBoxHead):
    """Compare a proposal with the query position by position, then score
    and regress it.

    Structure-aware relation module (Li et al., "One-shot object detection
    without fine-tuning", arXiv 2005.03819): the proposal's and the query's
    features are both pooled to ``K x K``, concatenated along channels and
    compared with pixel-wise (1x1) convolutions, so position ``(i, j)`` of
    the proposal is related to position ``(i, j)`` of the query — the local
    *structure* (which part sits where) takes part in the comparison, not
    only a global descriptor as in the Siamese ``|t - GAP(q)|``. The
    relation map then goes through mmdet's shared FCs to a fg/bg classifier
    and a class-agnostic box regressor (:class:`ConvFCBBoxHead`).

    Efficiency: the first 1x1 conv over ``cat(p, q)`` equals
    ``W_p p + W_q q + b``. The query term depends only on the episode, so
    :meth:`forward` computes ``W_q q`` once per episode (``B`` maps) and
    gathers it for the proposals, instead of convolving a copy of the query
    for each of the ~1000 proposals.

    Args:
        in_channels (int): Channels ``C_p`` of the pooled proposal features.
        query_channels (int, optional): Channels ``C_q`` of the pooled query
            features; defaults to ``in_channels``.
        relation_channels (int): Channels of every relation conv and of the
            map the FCs see. Defaults to 256.
        num_relation_convs (int): 1x1 conv layers (>= 1). Defaults to 2.
        relation_norm_cfg (dict, optional): Norm after each relation conv.
            Defaults to None (the RoI-feature statistics of one batch mix
            episodes; no norm keeps batched and one-by-one equal).
        act_cfg (dict): Activation after each relation conv. Defaults to
            ReLU.
        num_shared_fcs (int): FC layers after the relation. Defaults to 2.
        fc_out_channels (int): Width of the FCs. Defaults to 1024.
        **kwargs: :class:`BBoxHead` arguments (``roi_feat_size``,
            ``num_classes`` (must be 1), ``bbox_coder``,
            ``reg_class_agnostic`` (must be True), losses, ...).

    Shapes:
        ``forward(roi_feats, query_feats, roi_episodes)``:
        ``(N, C_p, K, K)``, ``(B, C_q, K, K)`` and ``(N,)`` (episode index of
        each proposal) -> ``cls_score`` ``(N, 2)`` and ``bbox_pred``
        ``(N, 4)``.
    """

    def __init__(self,
                 in_channels: int = 256,
                 query_channels: Optional[int] = None,
                 relation_channels: int = 256,
                 num_relation_convs: int = 2,
                 relation_norm_cfg: OptConfigType = None,
                 act_cfg: OptConfigType = dict(type='ReLU'),
                 num_shared_fcs: int = 2,
                 fc_out_channels: int = 1024,
                 **kwargs) -> None:
        if kwargs.get('num_classes', 1) != 1:
            raise ValueError(
                f'SARMBBoxHead: num_classes={kwargs["num_classes"]}, but the '
                'relation head is class-agnostic (query class vs '
                'background); set roi_head.bbox_head.num_classes=1.')
        if not kwargs.get('reg_class_agnostic', True):
            raise ValueError(
                'SARMBBoxHead: set reg_class_agnostic=True (one-shot heads '
                'regress one box per proposal).')
        if num_relation_convs < 1:
            raise ValueError('SARMBBoxHead: num_relation_convs must be >= 1, '
                             f'got {num_relation_convs}.')
        kwargs.setdefault('num_classes', 1)
        kwargs.setdefault('reg_class_agnostic', True)
        # The FCs see the relation map, so the parent's in_channels is the
        # relation width.
        super().__init__(
            in_channels=relation_channels,
            num_shared_fcs=num_shared_fcs,
            fc_out_channels=fc_out_channels,
            **kwargs)
        self.proposal_channels = in_channels
        self.query_channels = query_channels or in_channels
        self.relation_channels = relation_channels
        # First relation conv on cat(p, q), split into its p and q parts.
        with_bias = relation_norm_cfg is None
        self.proposal_proj = nn.Conv2d(
            in_channels, relation_channels, 1, bias=with_bias)
        self.query_proj = nn.Conv2d(
            self.query_channels, relation_channels, 1, bias=False)
        self.relation_norm = build_norm_layer(
            relation_norm_cfg, relation_channels)[1] \
            if relation_norm_cfg is not None else nn.Identity()
        self.relation_act = build_activation_layer(act_cfg) \
            if act_cfg is not None else nn.Identity()
        self.relation_convs = nn.ModuleList([
            ConvModule(
                relation_channels,
                relation_channels,
                1,
                norm_cfg=relation_norm_cfg,
                act_cfg=act_cfg) for _ in range(num_relation_convs - 1)
        ])

    def relate(self, roi_feats: Tensor, query_feats: Tensor,
               roi_episodes: Tensor) -> Tensor:
        """Pixel-wise relation of each proposal with its episode's query.

        Args:
            roi_feats (Tensor): Pooled proposals ``(N, C_p, K, K)``.
            query_feats (Tensor): Pooled queries, one per episode,
                ``(B, C_q, K, K)``.
            roi_episodes (Tensor): Episode index of each proposal, ``(N,)``
                long (column 0 of the RoIs).

        Returns:
            Tensor: Relation maps ``(N, relation_channels, K, K)``.
        """
        if roi_feats.shape[-2:] != query_feats.shape[-2:]:
            raise ValueError(
                'SARMBBoxHead: proposal and query features must be pooled to '
                f'the same K x K, got {tuple(roi_feats.shape[-2:])} and '
                f'{tuple(query_feats.shape[-2:])}.')
        query_term = self.query_proj(query_feats)  # once per episode
        x = self.proposal_proj(roi_feats) + query_term[roi_episodes]
        x = self.relation_act(self.relation_norm(x))
        for conv in self.relation_convs:
            x = conv(x)
        return x

    def forward(self, roi_feats: Tensor, query_feats: Tensor,
                roi_episodes: Tensor) -> Tuple[Tensor, Tensor]:
        """Relate, then classify (fg/bg) and regress each proposal.

        Args:
            roi_feats (Tensor): ``(N, C_p, K, K)``.
            query_feats (Tensor): ``(B, C_q, K, K)``.
            roi_episodes (Tensor): ``(N,)`` long.

        Returns:
            tuple[Tensor, Tensor]: ``cls_score`` ``(N, 2)`` and
            ``bbox_pred`` ``(N, 4)``.
        """
        return super().forward(
            self.relate(roi_feats, query_feats, roi_episodes))

"""Query-aware RoI head of AIT: CoAE's head with a per-proposal transformer
and selective channel attention before the shared head."""
from typing import NamedTuple, Sequence, Tuple

from mmdet.registry import MODELS
from mmdet.utils import ConfigType
from torch import Tensor

from .adaptive_image_transformer import QueryMemory
from .coae_roi_head import CoAERoIHead


class AITQueryEncoding(NamedTuple):
    """Everything AIT's head computes from the query, one row per episode.

    Attributes:
        memory (QueryMemory): The transformer encoder's output,
            ``(B, h*w, D)`` tokens and positions.
        channel_code (Tensor): The query's part of the selective channel
            attention, ``(B, C / reduction)``.
        embedding (Tensor): Shared head + global pooling of the query,
            ``(B, C_q)``, what the classifier compares proposals with.
    """
    memory: QueryMemory
    channel_code: Tensor
    embedding: Tensor


@MODELS.register_module()
class AITRoIHead(CoAERoIHead):
    """RoI head of AIT (Chen et al., "Adaptive Image Transformer for
    One-Shot Object Detection", CVPR 2021).

    CoAE's query-aware head (:class:`CoAERoIHead`: shared head = layer4,
    global average pooling, :class:`CoAEBBoxHead` classifying
    ``cat(proposal, query)`` with CoAE's margin ranking loss) with two
    steps between RoIAlign and the shared head. For proposal ``p``
    ``(C, 7, 7)`` of an episode with query map ``q`` ``(C, h, w)`` (the
    matcher's co-attended query):

    1. ``t = transformer(p, q)``: :class:`AdaptiveImageTransformer`
       translates the proposal given the query (encoder over ``q``, decoder
       over ``p``), back at ``C`` channels on the 7x7 grid;
    2. ``f = channel_attention(p, t, q)``:
       :class:`SelectiveChannelAttention` mixes ``p`` and ``t`` channel by
       channel with query-aware weights;
    3. ``f`` goes through the shared head and the box head like a CoAE RoI
       feature; the query goes through the same shared head and pooling.

    Query-only work runs once per episode, not once per proposal
    (:meth:`encode_episodes`): the transformer's encoder, the query's part
    of the channel attention's squeeze, and the query's shared head and
    pooling. Proposals pick their episode's row by ``rois[:, 0]``.

    Args:
        transformer (dict): :class:`AdaptiveImageTransformer` config;
            ``in_channels`` must be the RoI extractor's ``out_channels``.
        channel_attention (dict): :class:`SelectiveChannelAttention`
            config; ``channels`` as above.
        query_level (int): Level of ``query_feats`` holding the query (0
            for C4). Defaults to 0.
        **kwargs: :class:`CoAERoIHead` / ``StandardRoIHead`` arguments
            (``bbox_roi_extractor``, ``shared_head``, ``bbox_head`` = a
            :class:`CoAEBBoxHead`, ``train_cfg``, ``test_cfg``).
    """

    def __init__(self,
                 transformer: ConfigType,
                 channel_attention: ConfigType,
                 query_level: int = 0,
                 **kwargs) -> None:
        super().__init__(query_level=query_level, **kwargs)
        self.transformer = MODELS.build(transformer)
        self.channel_attention = MODELS.build(channel_attention)
        roi_channels = self.bbox_roi_extractor.out_channels
        widths = dict(
            transformer_in_channels=self.transformer.in_channels,
            channel_attention_channels=self.channel_attention.channels)
        wrong = {k: v for k, v in widths.items() if v != roi_channels}
        if wrong:
            raise ValueError(
                f'AITRoIHead: {wrong} differ from the RoI features\' '
                f'{roi_channels} channels (bbox_roi_extractor.out_channels);'
                ' set roi_head.transformer.in_channels and '
                'roi_head.channel_attention.channels to it.')

    def encode_query(self, query_feats: Sequence[Tensor]) -> Tensor:
        """The episode's query map (level ``query_level``).

        Args:
            query_feats (Sequence[Tensor]): Per level ``(B, C, h, w)``.

        Returns:
            Tensor: ``(B, C, h, w)``; :meth:`_bbox_forward` encodes it once
            per episode (:meth:`encode_episodes`).
        """
        if not 0 <= self.query_level < len(query_feats):
            raise ValueError(
                f'AITRoIHead: query_level={self.query_level} but the query '
                f'has {len(query_feats)} levels.')
        return query_feats[self.query_level]

    def encode_episodes(self, query: Tensor) -> AITQueryEncoding:
        """All query-only work, one row per episode.

        Args:
            query (Tensor): ``(B, C, h, w)``.

        Returns:
            AITQueryEncoding: ``(B, ...)`` tensors.
        """
        embedding = self.shared_head(query) if self.with_shared_head \
            else query
        return AITQueryEncoding(
            memory=self.transformer.encode_query(query),
            channel_code=self.channel_attention.encode_query(query),
            embedding=self.bbox_head.pool(embedding))

    def _bbox_forward(self, x: Tuple[Tensor, ...], rois: Tensor,
                      query: Tensor) -> dict:
        """RoIAlign, translate, select channels, shared head, box head.

        Args:
            x (tuple[Tensor]): Maps the proposals are pooled from, per
                level ``(B, C, H, W)`` (the co-attended target).
            rois (Tensor): ``(N, 5)``, column 0 the episode index.
            query (Tensor): ``(B, C, h, w)`` from :meth:`encode_query`.

        Returns:
            dict: ``cls_score`` ``(N, 2)``, ``bbox_pred`` ``(N, 4)`` and
            ``bbox_feats`` (the shared head's output for the RoIs).
        """
        query_inds = rois[:, 0].long()
        episodes = self.encode_episodes(query)
        proposals = self.bbox_roi_extractor(
            x[:self.bbox_roi_extractor.num_inputs], rois)
        translations = self.transformer.translate(proposals, episodes.memory,
                                                  query_inds)
        feats = self.channel_attention(proposals, translations,
                                       episodes.channel_code, query_inds)
        if self.with_shared_head:
            feats = self.shared_head(feats)
        cls_score, bbox_pred = self.bbox_head(feats, episodes.embedding,
                                              query_inds)
        return dict(
            cls_score=cls_score, bbox_pred=bbox_pred, bbox_feats=feats)

"""Query-aware RoI head of CoAE (shared head + proposal/query classifier)."""
from typing import Sequence

from mmdet.registry import MODELS
from torch import Tensor

from .query_aware_roi_head import QueryAwareRoIHead


@MODELS.register_module()
class CoAERoIHead(QueryAwareRoIHead):
    """RoI head that scores proposals against the episode's query (CoAE).

    CoAE (Hsieh et al., NeurIPS 2019): proposals are RoI-aligned from the
    co-excited target map, passed through the shared head (ResNet layer4 in
    the C4 model) and globally average-pooled to 2048 channels. The
    co-excited query map passes through the *same* shared head and pooling,
    once per episode (not per RoI), and :class:`CoAEBBoxHead` classifies
    ``cat(proposal, query)``; regression is class-agnostic.

    A :class:`QueryAwareRoIHead`: :class:`SiameseTwoStageDetector` passes
    ``query_feats`` (the matcher's excited query, per level ``(B, C, h, w)``)
    and ``target_feats`` (unused here: proposals are pooled from ``x``, the
    excited target) to :meth:`loss`, :meth:`predict` and :meth:`forward`.

    Args:
        query_level (int): Which level of ``query_feats`` encodes the query
            (0: the only level of a C4 backbone; for an FPN the finest,
            where the RoI extractor also pools query-sized boxes). Defaults
            to 0.
        **kwargs: :class:`StandardRoIHead` arguments; ``bbox_head`` must be
            a :class:`CoAEBBoxHead` (or take ``(roi_feats, query_embeds,
            query_inds)`` and pool with ``pool``). Mask heads are not
            supported.
    """

    def __init__(self, query_level: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.query_level = query_level
        if not hasattr(self.bbox_head, 'pool'):
            raise TypeError(
                f'CoAERoIHead needs a query-aware bbox_head such as '
                f"CoAEBBoxHead, got {type(self.bbox_head).__name__}; set "
                "roi_head.bbox_head.type='CoAEBBoxHead'.")

    def encode_query(self, query_feats: Sequence[Tensor]) -> Tensor:
        """Encode each episode's query like a proposal.

        Args:
            query_feats (Sequence[Tensor]): Per level ``(B, C, h, w)``.

        Returns:
            Tensor: ``(B, C_q)``: shared head (if any), then global average
            pooling of level ``query_level``.
        """
        if not 0 <= self.query_level < len(query_feats):
            raise ValueError(
                f'CoAERoIHead: query_level={self.query_level} but the query '
                f'has {len(query_feats)} levels.')
        query = query_feats[self.query_level]
        if self.with_shared_head:
            query = self.shared_head(query)
        return self.bbox_head.pool(query)

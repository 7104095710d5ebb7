"""Query-aware RoI head of CoAE (shared head + proposal/query classifier)."""
from typing import Optional, Sequence, Tuple

from mmdet.models.roi_heads import StandardRoIHead
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.utils import InstanceList
from torch import Tensor


class QueryConditionedFeats(tuple):
    """The RoI head's per-level maps together with the episodes' query
    embeddings.

    mmdet's :class:`StandardRoIHead` threads the feature tuple ``x`` from
    ``loss`` / ``predict`` / ``forward`` through proposal sampling and
    post-processing down to ``_bbox_forward``. Carrying the query
    embeddings as a named attribute of that tuple lets :class:`CoAERoIHead`
    reuse all of that code unchanged, without keeping per-batch state on the
    module. Indexing and slicing behave like the plain tuple of maps (the
    RoI extractor reads ``x[:num_inputs]``).

    Args:
        feats (Sequence[Tensor]): Per level ``(B, C, H, W)``.
        query_embeds (Tensor): ``(B, C_q)``, one row per episode.
    """

    query_embeds: Tensor

    def __new__(cls, feats: Sequence[Tensor],
                query_embeds: Tensor) -> 'QueryConditionedFeats':
        obj = super().__new__(cls, feats)
        obj.query_embeds = query_embeds
        return obj


@MODELS.register_module()
class CoAERoIHead(StandardRoIHead):
    """RoI head that scores proposals against the episode's query (CoAE).

    CoAE (Hsieh et al., NeurIPS 2019): proposals are RoI-aligned from the
    co-excited target map, passed through the shared head (ResNet layer4 in
    the C4 model) and globally average-pooled to 2048 channels. The
    co-excited query map passes through the *same* shared head and pooling,
    once per episode (not per RoI), and :class:`CoAEBBoxHead` classifies
    ``cat(proposal, query)``; regression is class-agnostic.

    ``uses_query = True``: :class:`SiameseTwoStageDetector` passes
    ``query_feats`` (the matcher's excited query, per level ``(B, C, h, w)``)
    and ``target_feats`` (unused here) to :meth:`loss`, :meth:`predict` and
    :meth:`forward`.

    Args:
        query_level (int): Which level of ``query_feats`` encodes the query
            (0: the only level of a C4 backbone; for an FPN the finest,
            where the RoI extractor also pools query-sized boxes). Defaults
            to 0.
        **kwargs: :class:`StandardRoIHead` arguments; ``bbox_head`` must be
            a :class:`CoAEBBoxHead` (or take ``(roi_feats, query_embeds)``).
    """

    uses_query = True

    def __init__(self, *args, query_level: int = 0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.query_level = query_level
        if not hasattr(self.bbox_head, 'pool'):
            raise TypeError(
                f'CoAERoIHead needs a query-aware bbox_head such as '
                f"CoAEBBoxHead, got {type(self.bbox_head).__name__}; set "
                "roi_head.bbox_head.type='CoAEBBoxHead'.")

    def embed_query(self, query_feats: Sequence[Tensor]) -> Tensor:
        """Encode each episode's query like a proposal.

        Args:
            query_feats (Sequence[Tensor]): Per level ``(B, C, h, w)``.

        Returns:
            Tensor: ``(B, C_q)``: shared head (if any), then global average
            pooling of level ``query_level``.
        """
        if query_feats is None:
            raise ValueError(
                'CoAERoIHead needs query_feats; it is called by '
                'SiameseTwoStageDetector, which passes them because the '
                'head sets uses_query = True.')
        if not 0 <= self.query_level < len(query_feats):
            raise ValueError(
                f'CoAERoIHead: query_level={self.query_level} but the query '
                f'has {len(query_feats)} levels.')
        query = query_feats[self.query_level]
        if self.with_shared_head:
            query = self.shared_head(query)
        return self.bbox_head.pool(query)

    def _with_query(self, x: Tuple[Tensor, ...],
                    query_feats: Sequence[Tensor]) -> QueryConditionedFeats:
        query_embeds = self.embed_query(query_feats)
        if query_embeds.shape[0] != x[0].shape[0]:
            raise ValueError(
                f'CoAERoIHead: {query_embeds.shape[0]} query rows for '
                f'{x[0].shape[0]} target rows; one query per episode.')
        return QueryConditionedFeats(x, query_embeds)

    def loss(self,
             x: Tuple[Tensor, ...],
             rpn_results_list: InstanceList,
             batch_data_samples: SampleList,
             query_feats: Optional[Sequence[Tensor]] = None,
             target_feats: Optional[Sequence[Tensor]] = None) -> dict:
        """StandardRoIHead's losses with the query-aware classifier.

        Args:
            x (tuple[Tensor]): Per level ``(B, C, H, W)`` (excited target).
            rpn_results_list (list[InstanceData]): Proposals per episode.
            batch_data_samples (list[DetDataSample]): Ground truth.
            query_feats (Sequence[Tensor]): Per level ``(B, C, h, w)``.
            target_feats (Sequence[Tensor], optional): Unused.

        Returns:
            dict[str, Tensor]: ``loss_cls``, ``acc``, ``loss_bbox`` and,
            when enabled, ``loss_rank``.
        """
        return super().loss(
            self._with_query(x, query_feats), rpn_results_list,
            batch_data_samples)

    def predict(self,
                x: Tuple[Tensor, ...],
                rpn_results_list: InstanceList,
                batch_data_samples: SampleList,
                rescale: bool = False,
                query_feats: Optional[Sequence[Tensor]] = None,
                target_feats: Optional[Sequence[Tensor]] = None
                ) -> InstanceList:
        """Detections per episode (see :meth:`StandardRoIHead.predict`)."""
        return super().predict(
            self._with_query(x, query_feats), rpn_results_list,
            batch_data_samples, rescale)

    def forward(self,
                x: Tuple[Tensor, ...],
                rpn_results_list: InstanceList,
                batch_data_samples: SampleList = None,
                query_feats: Optional[Sequence[Tensor]] = None,
                target_feats: Optional[Sequence[Tensor]] = None) -> tuple:
        """Raw ``(cls_score, bbox_pred)`` of every proposal."""
        return super().forward(
            self._with_query(x, query_feats), rpn_results_list,
            batch_data_samples)

    def _bbox_forward(self, x: QueryConditionedFeats, rois: Tensor) -> dict:
        """RoI features -> shared head -> classifier with the query.

        Args:
            x (QueryConditionedFeats): Maps and query embeddings.
            rois (Tensor): ``(n, 5)``; column 0 is the episode index.

        Returns:
            dict[str, Tensor]: ``cls_score``, ``bbox_pred``, ``bbox_feats``.
        """
        if not isinstance(x, QueryConditionedFeats):
            raise TypeError(
                'CoAERoIHead._bbox_forward needs the query embeddings; call '
                'loss/predict/forward with query_feats.')
        bbox_feats = self.bbox_roi_extractor(
            x[:self.bbox_roi_extractor.num_inputs], rois)
        if self.with_shared_head:
            bbox_feats = self.shared_head(bbox_feats)
        query_embeds = x.query_embeds[rois[:, 0].long()]
        cls_score, bbox_pred = self.bbox_head(bbox_feats, query_embeds)
        return dict(
            cls_score=cls_score, bbox_pred=bbox_pred, bbox_feats=bbox_feats)

"""RoI head of the structure-aware relation module (SARM)."""
from typing import Sequence

import torch
from mmdet.registry import MODELS
from torch import Tensor

from .query_aware_roi_head import PROPOSAL_FEATS, QueryAwareRoIHead
from .sarm_bbox_head import SARMBBoxHead

__all__ = ['SARMRoIHead', 'SARMBBoxHead']


@MODELS.register_module()
class SARMRoIHead(QueryAwareRoIHead):
    """Second stage of Matching-FCOS + SARM: relate proposals to the query.

    Li et al., "One-shot object detection without fine-tuning" (arXiv
    2005.03819). The first stage (Matching-FCOS as ``rpn_head``) gives
    high-recall, class-agnostic proposals; this head re-scores and refines
    them with the structure-aware relation module:

    1. every proposal is pooled to ``K x K`` with the ``bbox_roi_extractor``
       (RoIAlign on the FPN level that suits its size);
    2. the query is pooled to ``K x K`` with the *same* extractor, its RoI
       being the whole query patch, so the pyramid level is chosen for the
       query by the same rule as for a proposal of its size. This runs once
       per episode (``B`` RoIs), not once per proposal;
    3. :class:`~oneshot.models.roi_heads.SARMBBoxHead` concatenates the
       two, compares them with 1x1 convolutions and outputs fg/bg scores
       and class-agnostic box deltas.

    Which maps the proposals are pooled from (``proposal_feats``):
    ``'target'`` (default) pools the backbone/FPN target maps *before* the
    matcher — the same feature space as the query's maps, so the pixel-wise
    comparison relates like with like, and the query-conditioned matched
    maps stay the first stage's business; ``'matched'`` pools the matcher's
    output (``x``) instead. The query is always pooled from ``query_feats``.

    A :class:`QueryAwareRoIHead`: the Siamese detectors pass
    ``query_feats`` (per level ``(B, C, h, w)``) and ``target_feats`` (per
    level ``(B, C, H, W)``) to :meth:`loss`, :meth:`predict` and
    :meth:`forward`.

    Args:
        proposal_feats (str): ``'target'`` or ``'matched'`` (above).
        **kwargs: :class:`StandardRoIHead` arguments (``bbox_roi_extractor``,
            ``bbox_head`` (a ``SARMBBoxHead``), ``train_cfg``,
            ``test_cfg``). Mask heads are not supported.
    """

    def __init__(self, proposal_feats: str = 'target', **kwargs) -> None:
        if proposal_feats not in PROPOSAL_FEATS:
            raise ValueError(
                f'SARMRoIHead: proposal_feats={proposal_feats!r}; use one of '
                f'{PROPOSAL_FEATS}.')
        super().__init__(**kwargs)
        if not isinstance(self.bbox_head, SARMBBoxHead):
            raise TypeError(
                'SARMRoIHead relates proposals to the query inside its box '
                'head: roi_head.bbox_head must be a SARMBBoxHead, got '
                f'{type(self.bbox_head).__name__}.')
        self.proposal_feats = proposal_feats

    def encode_query(self, query_feats: Sequence[Tensor]) -> Tensor:
        """See :meth:`query_roi_feats`."""
        return self.query_roi_feats(query_feats)

    def query_roi_feats(self, query_feats: Sequence[Tensor]) -> Tensor:
        """Pool each episode's whole query patch to ``K x K``.

        The patch size is recovered from the finest level used by the
        extractor: ``S = h_0 * stride_0`` (exact for the square, padded
        query patches of the pipelines).

        Args:
            query_feats (Sequence[Tensor]): Per level ``(B, C_q, h, w)``.

        Returns:
            Tensor: ``(B, C_q, K, K)``.
        """
        extractor = self.bbox_roi_extractor
        feats = tuple(query_feats[:extractor.num_inputs])
        stride = extractor.featmap_strides[0]
        height = feats[0].shape[-2] * stride
        width = feats[0].shape[-1] * stride
        num_episodes = feats[0].shape[0]
        rois = feats[0].new_zeros((num_episodes, 5))
        rois[:, 0] = torch.arange(num_episodes, dtype=rois.dtype,
                                  device=rois.device)
        rois[:, 3] = width
        rois[:, 4] = height
        return extractor(feats, rois)

"""RoI head of the structure-aware relation module (SARM)."""
from typing import List, Optional, Sequence, Tuple

import torch
from mmdet.models.roi_heads import StandardRoIHead
from mmdet.models.task_modules.samplers import SamplingResult
from mmdet.models.utils import empty_instances, unpack_gt_instances
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox2roi
from mmdet.utils import InstanceList
from torch import Tensor

from .sarm_bbox_head import SARMBBoxHead

__all__ = ['SARMRoIHead', 'SARMBBoxHead']

PROPOSAL_FEATS = ('target', 'matched')


@MODELS.register_module()
class SARMRoIHead(StandardRoIHead):
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

    Query-aware hook (``uses_query = True``): the Siamese detectors pass
    ``query_feats`` (per level ``(B, C, h, w)``) and ``target_feats`` (per
    level ``(B, C, H, W)``) to :meth:`loss`, :meth:`predict` and
    :meth:`forward`.

    Args:
        proposal_feats (str): ``'target'`` or ``'matched'`` (above).
        **kwargs: :class:`StandardRoIHead` arguments (``bbox_roi_extractor``,
            ``bbox_head`` (a ``SARMBBoxHead``), ``train_cfg``,
            ``test_cfg``). Mask heads are not supported.
    """
    uses_query = True

    def __init__(self, proposal_feats: str = 'target', **kwargs) -> None:
        if proposal_feats not in PROPOSAL_FEATS:
            raise ValueError(
                f'SARMRoIHead: proposal_feats={proposal_feats!r}; use one of '
                f'{PROPOSAL_FEATS}.')
        if kwargs.get('mask_head') is not None:
            raise ValueError('SARMRoIHead has no mask branch; remove '
                             'roi_head.mask_head.')
        super().__init__(**kwargs)
        if not isinstance(self.bbox_head, SARMBBoxHead):
            raise TypeError(
                'SARMRoIHead relates proposals to the query inside its box '
                'head: roi_head.bbox_head must be a SARMBBoxHead, got '
                f'{type(self.bbox_head).__name__}.')
        self.proposal_feats = proposal_feats

    # ------------------------------------------------------------------
    # query and proposal features
    # ------------------------------------------------------------------
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

    def _proposal_maps(self, x: Tuple[Tensor, ...],
                       target_feats: Optional[Sequence[Tensor]]
                       ) -> Tuple[Tensor, ...]:
        if self.proposal_feats == 'matched':
            return tuple(x)
        if target_feats is None:
            raise ValueError(
                "SARMRoIHead(proposal_feats='target') needs target_feats; "
                'run it inside a Siamese detector (which passes them) or set '
                "proposal_feats='matched'.")
        return tuple(target_feats)

    def _bbox_forward(self, x: Tuple[Tensor, ...], rois: Tensor,
                      query_roi_feats: Tensor) -> dict:
        """Pool proposals and relate them to their episode's query.

        Args:
            x (tuple[Tensor]): Maps the proposals are pooled from.
            rois (Tensor): ``(N, 5)``, column 0 the episode index.
            query_roi_feats (Tensor): ``(B, C_q, K, K)``.

        Returns:
            dict: ``cls_score`` ``(N, 2)``, ``bbox_pred`` ``(N, 4)`` and
            ``bbox_feats`` ``(N, C_p, K, K)``.
        """
        bbox_feats = self.bbox_roi_extractor(
            x[:self.bbox_roi_extractor.num_inputs], rois)
        if self.with_shared_head:
            bbox_feats = self.shared_head(bbox_feats)
        cls_score, bbox_pred = self.bbox_head(bbox_feats, query_roi_feats,
                                              rois[:, 0].long())
        return dict(
            cls_score=cls_score, bbox_pred=bbox_pred, bbox_feats=bbox_feats)

    # ------------------------------------------------------------------
    # mmdet contract (+ query_feats / target_feats)
    # ------------------------------------------------------------------
    def forward(self,
                x: Tuple[Tensor, ...],
                rpn_results_list: InstanceList,
                batch_data_samples: SampleList = None,
                query_feats: Sequence[Tensor] = None,
                target_feats: Sequence[Tensor] = None) -> tuple:
        """Raw ``(cls_score, bbox_pred)`` of every proposal (FLOPs, export).

        Args:
            x (tuple[Tensor]): Matched maps, per level ``(B, C', H, W)``.
            rpn_results_list (list[InstanceData]): Proposals (``bboxes``).
            batch_data_samples (list[DetDataSample], optional): Unused.
            query_feats (Sequence[Tensor]): Per level ``(B, C_q, h, w)``.
            target_feats (Sequence[Tensor]): Per level ``(B, C, H, W)``.

        Returns:
            tuple: ``(cls_score (N, 2), bbox_pred (N, 4))``.
        """
        _check_query(query_feats)
        rois = bbox2roi([res.bboxes for res in rpn_results_list])
        results = self._bbox_forward(
            self._proposal_maps(x, target_feats), rois,
            self.query_roi_feats(query_feats))
        return results['cls_score'], results['bbox_pred']

    def loss(self,
             x: Tuple[Tensor, ...],
             rpn_results_list: InstanceList,
             batch_data_samples: SampleList,
             query_feats: Sequence[Tensor] = None,
             target_feats: Sequence[Tensor] = None) -> dict:
        """Assign and sample proposals as mmdet does, then the SARM losses.

        Args:
            x (tuple[Tensor]): Matched maps, per level ``(B, C', H, W)``.
            rpn_results_list (list[InstanceData]): Proposals per episode.
            batch_data_samples (list[DetDataSample]): Ground truth (label 0).
            query_feats (Sequence[Tensor]): Per level ``(B, C_q, h, w)``.
            target_feats (Sequence[Tensor]): Per level ``(B, C, H, W)``.

        Returns:
            dict[str, Tensor]: ``loss_cls``, ``acc``, ``loss_bbox``.
        """
        _check_query(query_feats)
        assert len(rpn_results_list) == len(batch_data_samples)
        batch_gt_instances, batch_gt_instances_ignore, _ = \
            unpack_gt_instances(batch_data_samples)
        maps = self._proposal_maps(x, target_feats)
        sampling_results = []
        for i, rpn_results in enumerate(rpn_results_list):
            rpn_results.priors = rpn_results.pop('bboxes')
            assign_result = self.bbox_assigner.assign(
                rpn_results, batch_gt_instances[i],
                batch_gt_instances_ignore[i])
            sampling_results.append(
                self.bbox_sampler.sample(
                    assign_result,
                    rpn_results,
                    batch_gt_instances[i],
                    feats=[level[i][None] for level in maps]))
        return self.bbox_loss(maps, sampling_results,
                              self.query_roi_feats(query_feats))['loss_bbox']

    def bbox_loss(self, x: Tuple[Tensor, ...],
                  sampling_results: List[SamplingResult],
                  query_roi_feats: Tensor) -> dict:
        """SARM forward on the sampled RoIs and its losses.

        Args:
            x (tuple[Tensor]): Maps the proposals are pooled from.
            sampling_results (list[SamplingResult]): Per episode.
            query_roi_feats (Tensor): ``(B, C_q, K, K)``.

        Returns:
            dict: ``_bbox_forward``'s outputs and ``loss_bbox`` (a dict of
            the box head's losses).
        """
        rois = bbox2roi([res.priors for res in sampling_results])
        bbox_results = self._bbox_forward(x, rois, query_roi_feats)
        loss_and_target = self.bbox_head.loss_and_target(
            cls_score=bbox_results['cls_score'],
            bbox_pred=bbox_results['bbox_pred'],
            rois=rois,
            sampling_results=sampling_results,
            rcnn_train_cfg=self.train_cfg)
        bbox_results.update(loss_bbox=loss_and_target['loss_bbox'])
        return bbox_results

    def predict(self,
                x: Tuple[Tensor, ...],
                rpn_results_list: InstanceList,
                batch_data_samples: SampleList,
                rescale: bool = False,
                query_feats: Sequence[Tensor] = None,
                target_feats: Sequence[Tensor] = None) -> InstanceList:
        """Score and refine the proposals of each episode.

        Args:
            x (tuple[Tensor]): Matched maps, per level ``(B, C', H, W)``.
            rpn_results_list (list[InstanceData]): Proposals per episode.
            batch_data_samples (list[DetDataSample]): Episode metainfo.
            rescale (bool): Boxes in original image pixels.
            query_feats (Sequence[Tensor]): Per level ``(B, C_q, h, w)``.
            target_feats (Sequence[Tensor]): Per level ``(B, C, H, W)``.

        Returns:
            list[InstanceData]: ``bboxes`` ``(n, 4)``, ``scores`` ``(n,)``,
            ``labels`` ``(n,)`` (0; the detector writes the episode label).
        """
        _check_query(query_feats)
        batch_img_metas = [s.metainfo for s in batch_data_samples]
        proposals = [res.bboxes for res in rpn_results_list]
        rois = bbox2roi(proposals)
        if rois.shape[0] == 0:
            return empty_instances(
                batch_img_metas,
                rois.device,
                task_type='bbox',
                box_type=self.bbox_head.predict_box_type,
                num_classes=self.bbox_head.num_classes,
                score_per_cls=False)
        bbox_results = self._bbox_forward(
            self._proposal_maps(x, target_feats), rois,
            self.query_roi_feats(query_feats))
        counts = tuple(len(p) for p in proposals)
        return self.bbox_head.predict_by_feat(
            rois=rois.split(counts, 0),
            cls_scores=bbox_results['cls_score'].split(counts, 0),
            bbox_preds=bbox_results['bbox_pred'].split(counts, 0),
            batch_img_metas=batch_img_metas,
            rcnn_test_cfg=self.test_cfg,
            rescale=rescale)


def _check_query(query_feats: Optional[Sequence[Tensor]]) -> None:
    if query_feats is None:
        raise ValueError(
            'SARMRoIHead needs query_feats (per level (B, C, h, w)); it is '
            'a query-aware RoI head (uses_query = True) and must run inside '
            'a Siamese one-shot detector, which passes them.')

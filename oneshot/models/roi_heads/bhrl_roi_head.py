"""BHRL's query-aware RoI head."""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.roi_heads import StandardRoIHead
from mmdet.models.task_modules.samplers import SamplingResult
from mmdet.models.utils import empty_instances, unpack_gt_instances
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox2roi
from mmdet.utils import ConfigType, InstanceList
from torch import Tensor


@MODELS.register_module()
class BHRLRoIHead(StandardRoIHead):
    """RoI head of BHRL: every proposal is related to the episode's query.

    BHRL (Yang et al., "Balanced and Hierarchical Relation Learning for
    One-shot Object Detection", CVPR 2022), instance level. A query-aware
    head (``uses_query = True``): :class:`SiameseTwoStageDetector` passes
    ``query_feats`` and ``target_feats`` (the FPN maps before the matcher).

    - Target RoI features: ``bbox_roi_extractor`` (RoIAlign 7x7, mmdet's
      level mapping) on the *original* FPN maps ``target_feats``, as in the
      paper. The matched maps ``x`` are not read by this head: the
      image-level (L1-difference) relation reaches it through the RPN's
      proposals, and the instance-level relation compares unfused
      appearance with the query.
    - Query RoI feature (:meth:`extract_query_roi_feat`): every query FPN
      level upsampled (bilinear) to the finest level and averaged, then
      RoIAlign (the extractor's ``roi_layer`` settings) of the whole query
      box. The query patch is the object crop padded to a square
      (``ResizeQueryPatches``), so the whole box is the whole patch. It is
      computed once per episode per forward and proposals index their
      episode's row (``rois[:, 0]``); it never depends on the proposal or
      on the level the proposal is pooled from.
    - ``bbox_head`` (:class:`BHRLBBoxHead`) relates each proposal to its
      query and predicts fg/bg + a class-agnostic box.

    Only the bbox branch is supported (BHRL has no mask head).

    Args:
        bbox_roi_extractor (dict): RoI extractor config; its
            ``out_channels`` is the FPN width.
        bbox_head (dict): Bbox head config, normally ``BHRLBBoxHead``
            (its ``forward`` takes ``(x, query_feats, query_inds)``).
        **kwargs: ``StandardRoIHead`` arguments (``train_cfg``,
            ``test_cfg``, ``init_cfg``).
    """

    uses_query = True

    def __init__(self, bbox_roi_extractor: ConfigType, bbox_head: ConfigType,
                 **kwargs) -> None:
        if kwargs.get('mask_head') is not None:
            raise ValueError(
                'BHRLRoIHead has no mask branch; remove roi_head.mask_head.')
        super().__init__(
            bbox_roi_extractor=bbox_roi_extractor, bbox_head=bbox_head,
            **kwargs)

    def init_bbox_head(self, bbox_roi_extractor: ConfigType,
                       bbox_head: ConfigType) -> None:
        """Build the extractor, the bbox head and the query RoI layer.

        The query RoI layer has the extractor's ``roi_layer`` settings with
        ``spatial_scale=1``: the query box is given in coordinates of the
        finest query level.
        """
        super().init_bbox_head(bbox_roi_extractor, bbox_head)
        self.query_roi_layer = self.bbox_roi_extractor.build_roi_layers(
            bbox_roi_extractor['roi_layer'], [1])[0]

    # ------------------------------------------------------------------
    # query
    # ------------------------------------------------------------------
    def extract_query_roi_feat(self, query_feats: Sequence[Tensor]) -> Tensor:
        """The query's RoI feature, one per episode.

        Args:
            query_feats (Sequence[Tensor]): Per FPN level ``(B, C, h_l,
                w_l)``, finest level first.

        Returns:
            Tensor: ``(B, C, s, s)`` with ``s`` the RoIAlign output size.
        """
        if query_feats is None or len(query_feats) == 0:
            raise ValueError(
                'BHRLRoIHead needs query_feats (per-level query features); '
                'use it inside SiameseTwoStageDetector, which passes them to '
                'heads with uses_query = True.')
        finest = query_feats[0]
        size = finest.shape[-2:]
        merged = finest
        for feat in query_feats[1:]:
            if feat.shape[-2] > size[0] or feat.shape[-1] > size[1]:
                shapes = [tuple(f.shape) for f in query_feats]
                raise ValueError(
                    'BHRLRoIHead: query_feats must be ordered finest level '
                    f'first, got shapes {shapes}.')
            merged = merged + F.interpolate(
                feat, size=size, mode='bilinear', align_corners=False)
        merged = merged / len(query_feats)
        num_episodes = merged.shape[0]
        whole_box = merged.new_tensor([0., 0., size[1], size[0]])
        rois = torch.cat([
            torch.arange(num_episodes, dtype=merged.dtype,
                         device=merged.device)[:, None],
            whole_box.expand(num_episodes, 4)
        ], dim=1)
        return self.query_roi_layer(merged, rois)

    # ------------------------------------------------------------------
    # forward / loss / predict
    # ------------------------------------------------------------------
    def _bbox_forward(self, x: Tuple[Tensor], rois: Tensor,
                      query_roi_feats: Tensor) -> dict:
        """Box head on target RoIs related to their episode's query.

        Args:
            x (tuple[Tensor]): Target FPN maps, per level ``(B, C, H, W)``.
            rois (Tensor): ``(N, 5)``, first column the episode index.
            query_roi_feats (Tensor): ``(B, C, s, s)``.

        Returns:
            dict: ``cls_score``, ``bbox_pred``, ``bbox_feats``.
        """
        bbox_feats = self.bbox_roi_extractor(
            x[:self.bbox_roi_extractor.num_inputs], rois)
        cls_score, bbox_pred = self.bbox_head(bbox_feats, query_roi_feats,
                                              rois[:, 0].long())
        return dict(
            cls_score=cls_score, bbox_pred=bbox_pred, bbox_feats=bbox_feats)

    def forward(self,
                x: Tuple[Tensor],
                rpn_results_list: InstanceList,
                batch_data_samples: SampleList = None,
                query_feats: Optional[Sequence[Tensor]] = None,
                target_feats: Optional[Sequence[Tensor]] = None) -> tuple:
        """Raw ``(cls_score, bbox_pred)`` of all proposals (no NMS).

        Args:
            x (tuple[Tensor]): Matched maps (unused, see the class doc).
            rpn_results_list (list[InstanceData]): Proposals per episode.
            batch_data_samples (list[DetDataSample]): Episode metainfo.
            query_feats (Sequence[Tensor]): Per level ``(B, C, h, w)``.
            target_feats (Sequence[Tensor]): Per level ``(B, C, H, W)``.
        """
        target_feats = self._check_target(target_feats)
        rois = bbox2roi([res.bboxes for res in rpn_results_list])
        results = self._bbox_forward(target_feats, rois,
                                     self.extract_query_roi_feat(query_feats))
        return results['cls_score'], results['bbox_pred']

    def loss(self,
             x: Tuple[Tensor],
             rpn_results_list: InstanceList,
             batch_data_samples: SampleList,
             query_feats: Optional[Sequence[Tensor]] = None,
             target_feats: Optional[Sequence[Tensor]] = None) -> dict:
        """Sample proposals and compute the box head's losses.

        Args:
            x (tuple[Tensor]): Matched maps (unused, see the class doc).
            rpn_results_list (list[InstanceData]): Proposals per episode.
            batch_data_samples (list[DetDataSample]): With
                ``gt_instances`` (label 0).
            query_feats (Sequence[Tensor]): Per level ``(B, C, h, w)``.
            target_feats (Sequence[Tensor]): Per level ``(B, C, H, W)``.

        Returns:
            dict[str, Tensor]: ``loss_cls``, ``acc``, ``loss_bbox``.
        """
        target_feats = self._check_target(target_feats)
        assert len(rpn_results_list) == len(batch_data_samples)
        batch_gt_instances, batch_gt_instances_ignore, _ = \
            unpack_gt_instances(batch_data_samples)
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
                    feats=[feat[i][None] for feat in target_feats]))
        query_roi_feats = self.extract_query_roi_feat(query_feats)
        return self.bbox_loss(target_feats, sampling_results,
                              query_roi_feats)['loss_bbox']

    def bbox_loss(self, x: Tuple[Tensor],
                  sampling_results: List[SamplingResult],
                  query_roi_feats: Tensor) -> dict:
        """Box head forward and losses on sampled RoIs.

        Args:
            x (tuple[Tensor]): Target FPN maps.
            sampling_results (list[SamplingResult]): Per episode.
            query_roi_feats (Tensor): ``(B, C, s, s)``.

        Returns:
            dict: ``cls_score``, ``bbox_pred``, ``bbox_feats``,
            ``loss_bbox`` (dict of losses).
        """
        rois = bbox2roi([res.priors for res in sampling_results])
        bbox_results = self._bbox_forward(x, rois, query_roi_feats)
        bbox_loss_and_target = self.bbox_head.loss_and_target(
            cls_score=bbox_results['cls_score'],
            bbox_pred=bbox_results['bbox_pred'],
            rois=rois,
            sampling_results=sampling_results,
            rcnn_train_cfg=self.train_cfg)
        bbox_results.update(loss_bbox=bbox_loss_and_target['loss_bbox'])
        return bbox_results

    def predict(self,
                x: Tuple[Tensor],
                rpn_results_list: InstanceList,
                batch_data_samples: SampleList,
                rescale: bool = False,
                query_feats: Optional[Sequence[Tensor]] = None,
                target_feats: Optional[Sequence[Tensor]] = None
                ) -> InstanceList:
        """Detections of the query's class in every episode.

        Args:
            x (tuple[Tensor]): Matched maps (unused, see the class doc).
            rpn_results_list (list[InstanceData]): Proposals per episode.
            batch_data_samples (list[DetDataSample]): Episode metainfo.
            rescale (bool): Boxes in original image pixels.
            query_feats (Sequence[Tensor]): Per level ``(B, C, h, w)``.
            target_feats (Sequence[Tensor]): Per level ``(B, C, H, W)``.

        Returns:
            list[InstanceData]: ``bboxes``, ``scores``, ``labels`` (0) per
            episode.
        """
        target_feats = self._check_target(target_feats)
        batch_img_metas = [sample.metainfo for sample in batch_data_samples]
        return self.predict_bbox(
            target_feats,
            batch_img_metas,
            rpn_results_list,
            rcnn_test_cfg=self.test_cfg,
            rescale=rescale,
            query_roi_feats=self.extract_query_roi_feat(query_feats))

    def predict_bbox(self,
                     x: Tuple[Tensor],
                     batch_img_metas: List[dict],
                     rpn_results_list: InstanceList,
                     rcnn_test_cfg: ConfigType,
                     rescale: bool = False,
                     query_roi_feats: Optional[Tensor] = None
                     ) -> InstanceList:
        """mmdet's ``predict_bbox`` with the query RoI features.

        Args:
            x (tuple[Tensor]): Target FPN maps.
            batch_img_metas (list[dict]): Per episode.
            rpn_results_list (list[InstanceData]): Proposals per episode.
            rcnn_test_cfg (dict): ``score_thr``, ``nms``, ``max_per_img``.
            rescale (bool): Boxes in original image pixels.
            query_roi_feats (Tensor): ``(B, C, s, s)``.

        Returns:
            list[InstanceData]: Detections per episode.
        """
        if query_roi_feats is None:
            raise ValueError('BHRLRoIHead.predict_bbox needs query_roi_feats '
                             '(from extract_query_roi_feat).')
        proposals = [res.bboxes for res in rpn_results_list]
        rois = bbox2roi(proposals)
        if rois.shape[0] == 0:
            return empty_instances(
                batch_img_metas,
                rois.device,
                task_type='bbox',
                box_type=self.bbox_head.predict_box_type,
                num_classes=self.bbox_head.num_classes,
                score_per_cls=rcnn_test_cfg is None)
        bbox_results = self._bbox_forward(x, rois, query_roi_feats)
        num_proposals_per_img = tuple(len(p) for p in proposals)
        return self.bbox_head.predict_by_feat(
            rois=rois.split(num_proposals_per_img, 0),
            cls_scores=bbox_results['cls_score'].split(
                num_proposals_per_img, 0),
            bbox_preds=bbox_results['bbox_pred'].split(
                num_proposals_per_img, 0),
            batch_img_metas=batch_img_metas,
            rcnn_test_cfg=rcnn_test_cfg,
            rescale=rescale)

    def _check_target(
            self, target_feats: Optional[Sequence[Tensor]]) -> Tuple[Tensor]:
        if target_feats is None:
            raise ValueError(
                'BHRLRoIHead pools proposals from the un-matched FPN maps and '
                'needs target_feats; use it inside SiameseTwoStageDetector, '
                'which passes them to heads with uses_query = True.')
        return tuple(target_feats)

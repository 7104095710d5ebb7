"""Two-stage one-shot detector: shared backbone, matcher, RPN, RoI head."""
import copy
from typing import Dict

import torch
from mmdet.models.detectors import TwoStageDetector
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from torch import Tensor

from .siamese_base import (EpisodeFeats, SiameseEpisodeMixin,
                           check_query_fusion)


@MODELS.register_module()
class SiameseTwoStageDetector(SiameseEpisodeMixin, TwoStageDetector):
    """Two-stage one-shot detector with a shared (Siamese) backbone.

    For every episode (a target image and K query patches of one class):

    1. the backbone (+ neck) encodes the target image
       (:meth:`extract_feat`, mmdet's) and the K query patches
       (:meth:`extract_query_feat`, fused over K by ``query_fusion``);
    2. a matcher (``oneshot.models.matchers``) conditions the target maps on
       the query: ``matcher(target_feats, query_feats) -> matched_feats``,
       or a :class:`~.siamese_base.MatcherOutput` when the RPN and the RoI
       head see different maps (CoAE);
    3. a stock ``RPNHead`` proposes on the matched maps and the RoI head
       scores them. Heads are class-agnostic (``num_classes=1``): "the
       query's class" vs background. :meth:`predict` writes each episode's
       ``episode_label`` into ``pred_instances.labels``.

    Work is shared across episodes of a batch (:class:`SiameseEpisodeMixin`):
    identical target images and identical query sets run the backbone once.

    Extension point for query-aware RoI heads: a RoI head class that sets
    the attribute ``uses_query = True`` receives two extra keyword
    arguments in ``loss``, ``predict`` and ``forward``:

    - ``query_feats`` (tuple[Tensor]): per level ``(B, C, h, w)``, the
      K-fused query features of each episode (or the matcher's
      ``MatcherOutput.query`` when it re-encodes the query);
    - ``target_feats`` (tuple[Tensor]): per level ``(B, C, H, W)``, the
      target features *before* the matcher (e.g. BHRL pools proposals from
      the original FPN maps),

    after the usual ``(x, rpn_results_list, batch_data_samples)`` where
    ``x`` is the matched maps (``MatcherOutput.roi`` when given). Stock
    mmdet RoI heads get neither.

    Args:
        backbone (dict): Backbone config, shared by targets and queries.
        matcher (dict): Matcher config (e.g. ``L1DiffMatcher``,
            ``CrossAttentionMatcher``).
        rpn_head (dict): RPN head config (its ``in_channels`` are the
            matcher's output channels).
        roi_head (dict): RoI head config, ``num_classes=1``.
        train_cfg (dict): ``rpn``, ``rpn_proposal`` and ``rcnn`` settings.
        test_cfg (dict): ``rpn`` and ``rcnn`` settings.
        neck (dict, optional): Neck config (e.g. FPN).
        query_fusion (str): How the K shots' features are fused, ``'mean'``
            (default) or ``'max'``, element-wise over K.
        data_preprocessor (dict, optional): Usually
            ``OneShotDataPreprocessor``.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 backbone: ConfigType,
                 matcher: ConfigType,
                 rpn_head: ConfigType,
                 roi_head: ConfigType,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 neck: OptConfigType = None,
                 query_fusion: str = 'mean',
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        check_query_fusion('SiameseTwoStageDetector', query_fusion)
        if test_cfg is None:
            raise ValueError(
                'SiameseTwoStageDetector needs test_cfg with "rpn" and '
                '"rcnn" entries (proposal and detection settings).')
        super().__init__(
            backbone=backbone,
            neck=neck,
            rpn_head=rpn_head,
            roi_head=roi_head,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        self.matcher = MODELS.build(matcher)
        self.query_fusion = query_fusion

    # ------------------------------------------------------------------
    # mmdet contract
    # ------------------------------------------------------------------
    def loss(self, batch_inputs: Dict[str, Tensor],
             batch_data_samples: SampleList) -> dict:
        """Losses of the RPN and the RoI head on a batch of episodes.

        Args:
            batch_inputs (dict): ``img`` ``(B, 3, H, W)`` and ``query``
                ``(B, K, 3, S, S)``.
            batch_data_samples (list[DetDataSample]): ``gt_instances`` hold
                the episode class's boxes with label 0.

        Returns:
            dict[str, Tensor]: ``loss_rpn_cls``, ``loss_rpn_bbox`` and the
            RoI head's losses.
        """
        self._check_gt_labels(batch_data_samples)
        feats = self.extract_episode_feat(batch_inputs, batch_data_samples)
        losses = dict()
        proposal_cfg = self.train_cfg.get('rpn_proposal', self.test_cfg.rpn)
        rpn_data_samples = copy.deepcopy(batch_data_samples)
        # The RPN is class-agnostic: its targets are label 0, as in mmdet.
        for data_sample in rpn_data_samples:
            data_sample.gt_instances.labels = torch.zeros_like(
                data_sample.gt_instances.labels)
        rpn_losses, rpn_results_list = self.rpn_head.loss_and_predict(
            feats.matched, rpn_data_samples, proposal_cfg=proposal_cfg)
        for key in list(rpn_losses.keys()):
            if 'loss' in key and 'rpn' not in key:
                rpn_losses[f'rpn_{key}'] = rpn_losses.pop(key)
        losses.update(rpn_losses)
        roi_losses = self.roi_head.loss(feats.roi, rpn_results_list,
                                        batch_data_samples,
                                        **self._roi_head_kwargs(feats))
        losses.update(roi_losses)
        return losses

    def predict(self,
                batch_inputs: Dict[str, Tensor],
                batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """Detect the query's class in each episode's target image.

        Args:
            batch_inputs (dict): ``img`` ``(B, 3, H, W)`` and ``query``
                ``(B, K, 3, S, S)``.
            batch_data_samples (list[DetDataSample]): Episode metainfo.
            rescale (bool): Return boxes in original image pixels.
                Defaults to True.

        Returns:
            list[DetDataSample]: The input samples with ``pred_instances``
            (``bboxes`` ``(N, 4)`` xyxy, ``scores`` ``(N,)``, ``labels``
            ``(N,)`` = the episode's ``episode_label``, 0 if absent).
        """
        feats = self.extract_episode_feat(batch_inputs, batch_data_samples)
        return self.predict_matched(feats, batch_data_samples, rescale)

    def predict_matched(self,
                        feats: EpisodeFeats,
                        batch_data_samples: SampleList,
                        rescale: bool = True) -> SampleList:
        """Proposals and detections from already matched features.

        :meth:`predict` is ``extract_episode_feat`` followed by this; the
        inferencer calls it with cached target and query features
        (:meth:`SiameseEpisodeMixin.predict_with_feats`).
        """
        rpn_results_list = self.rpn_head.predict(
            feats.matched, batch_data_samples, rescale=False)
        results_list = self.roi_head.predict(
            feats.roi,
            rpn_results_list,
            batch_data_samples,
            rescale=rescale,
            **self._roi_head_kwargs(feats))
        return self.add_episode_predictions(batch_data_samples, results_list)

    def _forward(self, batch_inputs: Dict[str, Tensor],
                 batch_data_samples: SampleList) -> tuple:
        """Raw head outputs without post-processing (for FLOPs, export).

        Args:
            batch_inputs (dict): ``img`` and ``query`` tensors.
            batch_data_samples (list[DetDataSample]): Episode metainfo.

        Returns:
            tuple: ``(roi_head_outputs,)`` as in mmdet's two-stage
            detectors, computed on the matched maps.
        """
        feats = self.extract_episode_feat(batch_inputs, batch_data_samples)
        rpn_results_list = self.rpn_head.predict(
            feats.matched, batch_data_samples, rescale=False)
        roi_outs = self.roi_head.forward(feats.roi, rpn_results_list,
                                         batch_data_samples,
                                         **self._roi_head_kwargs(feats))
        return (roi_outs, )

"""Single-stage one-shot detector: shared backbone, matcher, dense head."""
from typing import Dict

from mmdet.models.detectors import SingleStageDetector
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample, SampleList
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from torch import Tensor

from .siamese_base import (EpisodeFeats, SiameseEpisodeMixin,
                           check_query_fusion)


@MODELS.register_module()
class SiameseSingleStageDetector(SiameseEpisodeMixin, SingleStageDetector):
    """One-stage one-shot detector with a shared (Siamese) backbone.

    For every episode (a target image and K query patches of one class):

    1. the backbone (+ neck) encodes the target image and the K query
       patches (fused over K by ``query_fusion``);
    2. a matcher (``oneshot.models.matchers``) conditions the target pyramid
       on the query, level by level;
    3. a class-agnostic dense head (e.g.
       :class:`~oneshot.models.dense_heads.MatchingFCOSHead`, the paper's
       Matching-FCOS) detects "the query's class" on the matched maps.
       :meth:`predict` writes each episode's ``episode_label`` into
       ``pred_instances.labels``.

    Target/query deduplication (one backbone pass per distinct image and
    per distinct query set of a batch), K-shot fusion and the ground-truth
    check come from :class:`~.siamese_base.SiameseEpisodeMixin`, shared
    with :class:`~.SiameseTwoStageDetector`. When the matcher returns a
    :class:`~.siamese_base.MatcherOutput`, the dense head sees its ``rpn``
    maps (the proposal-stage maps; a one-stage detector has no RoI stage).

    Args:
        backbone (dict): Backbone config, shared by targets and queries.
        matcher (dict): Matcher config (e.g. ``L1DiffMatcher``).
        bbox_head (dict): Dense head config, ``num_classes=1``; its
            ``in_channels`` are the matcher's output channels.
        neck (dict, optional): Neck config (e.g. FPN with P3-P7).
        train_cfg (dict, optional): The dense head's training settings.
        test_cfg (dict, optional): The dense head's post-processing
            (``score_thr``, ``nms``, ``max_per_img``).
        query_fusion (str): How the K shots' features are fused, ``'mean'``
            (default) or ``'max'``.
        data_preprocessor (dict, optional): Usually
            ``OneShotDataPreprocessor``.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 backbone: ConfigType,
                 matcher: ConfigType,
                 bbox_head: ConfigType,
                 neck: OptConfigType = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 query_fusion: str = 'mean',
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        check_query_fusion('SiameseSingleStageDetector', query_fusion)
        if test_cfg is None:
            raise ValueError(
                'SiameseSingleStageDetector needs test_cfg (the dense head\'s '
                'post-processing: score_thr, nms, max_per_img).')
        super().__init__(
            backbone=backbone,
            neck=neck,
            bbox_head=bbox_head,
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
        """Dense-head losses on a batch of episodes.

        Args:
            batch_inputs (dict): ``img`` ``(B, 3, H, W)`` and ``query``
                ``(B, K, 3, S, S)``.
            batch_data_samples (list[DetDataSample]): ``gt_instances`` hold
                the episode class's boxes with label 0.

        Returns:
            dict[str, Tensor]: The dense head's losses (for FCOS
            ``loss_cls``, ``loss_bbox``, ``loss_centerness``).
        """
        self._check_gt_labels(batch_data_samples)
        feats = self.extract_episode_feat(batch_inputs, batch_data_samples)
        return self.bbox_head.loss(feats.matched, batch_data_samples)

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
        """Dense head and post-processing on already matched features
        (:meth:`predict` and the inferencer's cached path)."""
        results_list = self.bbox_head.predict(
            feats.matched, batch_data_samples, rescale=rescale)
        return self.add_episode_predictions(batch_data_samples, results_list)

    def _forward(self, batch_inputs: Dict[str, Tensor],
                 batch_data_samples: SampleList = None) -> tuple:
        """Raw dense-head outputs without post-processing (FLOPs, export).

        Args:
            batch_inputs (dict): ``img`` and ``query`` tensors.
            batch_data_samples (list[DetDataSample]): Episode metainfo
                (``img_id`` / ``query_ann_ids`` let identical inputs share a
                backbone pass); may be None, then nothing is shared.

        Returns:
            tuple: The head's ``forward`` on the matched maps (for FCOS
            per-level ``cls_scores``, ``bbox_preds``, ``centernesses``).
        """
        if batch_data_samples is None and isinstance(batch_inputs, dict) \
                and 'img' in batch_inputs:
            # Metainfo-free samples: every episode is encoded on its own.
            batch_data_samples = [
                DetDataSample() for _ in range(len(batch_inputs['img']))
            ]
        feats = self.extract_episode_feat(batch_inputs, batch_data_samples)
        return self.bbox_head.forward(feats.matched)

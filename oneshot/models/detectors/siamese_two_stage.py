"""Two-stage one-shot detector: shared backbone, matcher, RPN, RoI head."""
from typing import Tuple

from mmdet.models.detectors import TwoStageDetector
from mmdet.registry import MODELS

from .siamese_base import SiameseEpisodeMixin


@MODELS.register_module()
class SiameseTwoStageDetector(SiameseEpisodeMixin, TwoStageDetector):
    """Two-stage one-shot detector with a shared (Siamese) backbone.

    For every episode (a target image and K query patches of one class):

    1. the backbone (+ neck) encodes the target image
       (:meth:`extract_feat`, mmdet's) and the K query patches
       (:meth:`extract_query_feat`, fused over K by ``query_fusion``);
    2. a matcher (``oneshot.models.matchers``) conditions the target maps on
       the query: ``matcher(target_feats, query_feats) -> matched_feats``,
       or a :class:`~oneshot.models.matchers.MatcherOutput` when the RPN and
       the RoI head see different maps (CoAE);
    3. a stock ``RPNHead`` (or any mmdet RPN-style head) proposes on the
       matched maps and the RoI head scores them, through mmdet's own
       ``TwoStageDetector.loss`` / ``predict`` / ``_forward``. Heads are
       class-agnostic (``num_classes=1``): "the query's class" vs
       background. :meth:`predict` writes each episode's ``episode_label``
       into ``pred_instances.labels``.

    Inputs, ground truth, the sharing of backbone passes across episodes
    and what query-aware RoI heads receive are the episode contract of
    :mod:`~oneshot.models.detectors.siamese_base`: a RoI head with
    ``uses_query = True`` (a
    :class:`~oneshot.models.roi_heads.QueryAwareRoIHead`) gets
    ``query_feats`` (per level ``(B, C, h, w)``, K-fused, or the matcher's
    ``MatcherOutput.query``) and ``target_feats`` (per level ``(B, C, H,
    W)``, before the matcher) after ``(x, rpn_results_list,
    batch_data_samples)``, where ``x`` is the matched maps
    (``MatcherOutput.roi`` when given).

    Args:
        backbone (dict): Backbone config, shared by targets and queries.
        matcher (dict): Matcher config (e.g. ``L1DiffMatcher``,
            ``CrossAttentionMatcher``).
        rpn_head (dict): RPN head config (its ``in_channels`` are the
            matcher's output channels).
        roi_head (dict): RoI head config, ``num_classes=1``.
        train_cfg (dict): ``rpn``, ``rpn_proposal`` and ``rcnn`` settings.
        test_cfg (dict): ``rpn`` and ``rcnn`` settings (required).
        neck (dict, optional): Neck config (e.g. FPN).
        query_fusion (str): How the K shots' features are fused, ``'mean'``
            (default) or ``'max'``, element-wise over K.
        data_preprocessor (dict, optional): Usually
            ``OneShotDataPreprocessor``.
        init_cfg (dict, optional): Initialisation config.
    """

    mmdet_base = TwoStageDetector
    test_cfg_help = ('with "rpn" and "rcnn" entries (proposal and detection '
                     'settings)')

    def episode_head(self) -> Tuple[str, int]:
        """The RoI head's box head decides what a foreground label is."""
        return 'roi_head', self.roi_head.bbox_head.num_classes

"""Single-stage one-shot detector: shared backbone, matcher, dense head."""
from typing import Tuple

from mmdet.models.detectors import SingleStageDetector
from mmdet.registry import MODELS

from .siamese_base import SiameseEpisodeMixin


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
       Matching-FCOS) detects "the query's class" on the matched maps,
       through mmdet's own ``SingleStageDetector.loss`` / ``predict`` /
       ``_forward``. :meth:`predict` writes each episode's
       ``episode_label`` into ``pred_instances.labels``.

    Target/query deduplication, K-shot fusion and the ground-truth check
    are the episode contract of :mod:`~oneshot.models.detectors.siamese_base`,
    shared with :class:`~.SiameseTwoStageDetector`. When the matcher returns
    a :class:`~oneshot.models.matchers.MatcherOutput`, the dense head sees
    its ``rpn`` maps (the proposal-stage maps; a one-stage detector has no
    RoI stage).

    Args:
        backbone (dict): Backbone config, shared by targets and queries.
        matcher (dict): Matcher config (e.g. ``L1DiffMatcher``).
        bbox_head (dict): Dense head config, ``num_classes=1``; its
            ``in_channels`` are the matcher's output channels.
        neck (dict, optional): Neck config (e.g. FPN with P3-P7).
        train_cfg (dict, optional): The dense head's training settings.
        test_cfg (dict): The dense head's post-processing (``score_thr``,
            ``nms``, ``max_per_img``; required).
        query_fusion (str): How the K shots' features are fused, ``'mean'``
            (default) or ``'max'``.
        data_preprocessor (dict, optional): Usually
            ``OneShotDataPreprocessor``.
        init_cfg (dict, optional): Initialisation config.
    """

    mmdet_base = SingleStageDetector
    test_cfg_help = ("(the dense head's post-processing: score_thr, nms, "
                     'max_per_img)')

    def episode_head(self) -> Tuple[str, int]:
        """The dense head decides what a foreground label is."""
        return 'bbox_head', self.bbox_head.num_classes

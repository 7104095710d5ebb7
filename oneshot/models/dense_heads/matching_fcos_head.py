"""Matching-FCOS: a class-agnostic FCOS head on query-conditioned maps."""
from typing import Tuple

from mmdet.models.dense_heads import FCOSHead
from mmdet.models.utils import unpack_gt_instances
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.utils import InstanceList, OptConfigType
from torch import Tensor


@MODELS.register_module()
class MatchingFCOSHead(FCOSHead):
    """Class-agnostic FCOS head that runs on a matcher's output maps.

    Matching-FCOS (Li et al., "One-shot object detection without
    fine-tuning", arXiv 2005.03819): FCOS on FPN P3-P7 whose input maps
    are already conditioned on the query by a matcher
    (``oneshot.models.matchers``), so its one foreground class means "looks
    like the query". Everything else is mmdet's :class:`FCOSHead` —
    per-level regress ranges, centre sampling, GIoU box loss, centre-ness —
    which is why this class adds no computation: it fixes the one-shot
    role and checks the configuration.

    The same head serves two roles:

    - **one-stage detector** (``bbox_head`` of
      :class:`~oneshot.models.detectors.SiameseSingleStageDetector`): its
      ``test_cfg`` is FCOS's (``score_thr``, ``nms``, ``max_per_img``);
    - **proposal generator** (``rpn_head`` of
      :class:`~oneshot.models.detectors.SiameseTwoStageDetector`, the paper's
      Matching-FCOS + SARM). mmdet's ``TwoStageDetector`` injects
      ``num_classes=1``, ``train_cfg=train_cfg.rpn`` and
      ``test_cfg=test_cfg.rpn``. FCOS assigns targets itself (regress ranges
      and centre sampling), so ``train_cfg.rpn`` must not carry an anchor
      ``assigner``/``sampler`` — those would be silently ignored, so they
      are rejected; use ``train_cfg=dict(rpn=dict(), ...)``. The proposal
      ``test_cfg`` (``nms_pre``, ``max_per_img``, ``nms``) is read by
      mmdet's ``predict_by_feat`` like an RPN's; proposal scores are
      ``sigmoid(cls) * centre-ness`` and are detached, as RPN proposals are.

    Args:
        num_classes (int): Must be 1 (the query's class; background is
            implicit in the sigmoid classifier). Defaults to 1.
        in_channels (int): Channels of the matched maps (the matcher's
            ``out_channels``).
        train_cfg (dict, optional): Unused by FCOS except for being
            stored; must hold no ``assigner``/``sampler``.
        test_cfg (dict, optional): Post-processing settings.
        **kwargs: Every other :class:`FCOSHead` argument (``strides``,
            ``regress_ranges``, ``center_sampling``, ``norm_on_bbox``,
            ``centerness_on_reg``, losses, ...).

    Shapes:
        ``forward(x)`` with ``x`` a tuple of ``(B, in_channels, H_l, W_l)``
        (one row per episode) returns per-level ``cls_scores``
        ``(B, 1, H_l, W_l)``, ``bbox_preds`` ``(B, 4, H_l, W_l)`` and
        ``centernesses`` ``(B, 1, H_l, W_l)``.
    """

    def __init__(self,
                 in_channels: int,
                 num_classes: int = 1,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 **kwargs) -> None:
        if num_classes != 1:
            raise ValueError(
                f'MatchingFCOSHead: num_classes={num_classes}, but one-shot '
                'heads are class-agnostic; set bbox_head.num_classes=1 (the '
                'episode class is written into the labels by the detector).')
        if train_cfg is not None and ('assigner' in train_cfg
                                      or 'sampler' in train_cfg):
            raise ValueError(
                'MatchingFCOSHead: train_cfg has an assigner/sampler '
                f'({sorted(train_cfg)}), which FCOS never uses (it assigns '
                'points by regress_ranges and centre sampling). As rpn_head '
                'of a two-stage detector set model.train_cfg.rpn=dict() '
                '(with _delete_=True when inheriting an RPN config).')
        strides = kwargs.get('strides', (4, 8, 16, 32, 64))
        regress_ranges = kwargs.get('regress_ranges')
        if regress_ranges is not None and len(regress_ranges) != len(strides):
            raise ValueError(
                f'MatchingFCOSHead: {len(strides)} strides {list(strides)} '
                f'but {len(regress_ranges)} regress_ranges; give one '
                '(min, max) range per feature level.')
        super().__init__(
            num_classes=num_classes,
            in_channels=in_channels,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            **kwargs)

    def loss_and_predict(self,
                         x: Tuple[Tensor, ...],
                         batch_data_samples: SampleList,
                         proposal_cfg: OptConfigType = None
                         ) -> Tuple[dict, InstanceList]:
        """FCOS losses and proposals in one pass (the RPN role in training).

        mmdet's ``FCOSHead.forward_single`` leaves box distances in units of
        the level's stride while ``self.training`` and ``norm_on_bbox`` are
        set (the loss wants them that way) and multiplies by the stride only
        in eval mode. mmdet's generic ``loss_and_predict`` decodes those
        training-mode outputs as if they were pixels, which shrinks every
        training proposal by the stride: no proposal overlaps the ground
        truth, the second stage only ever sees ground-truth boxes as
        positives and learns nothing useful. Here the distances are
        scaled to pixels before decoding, so training proposals equal the
        eval-mode proposals of the same maps.

        Args:
            x (tuple[Tensor]): Matched maps per level.
            batch_data_samples (list[DetDataSample]): Ground truth.
            proposal_cfg (dict, optional): Proposal post-processing.

        Returns:
            tuple: ``(losses, proposals)`` as mmdet's ``loss_and_predict``.
        """
        batch_gt_instances, batch_gt_instances_ignore, batch_img_metas = \
            unpack_gt_instances(batch_data_samples)
        cls_scores, bbox_preds, centernesses = self(x)
        losses = self.loss_by_feat(cls_scores, bbox_preds, centernesses,
                                   batch_gt_instances, batch_img_metas,
                                   batch_gt_instances_ignore)
        if self.training and self.norm_on_bbox:
            bbox_preds = [
                pred * _stride_value(stride)
                for pred, stride in zip(bbox_preds, self.strides)
            ]
        proposals = self.predict_by_feat(
            cls_scores, bbox_preds, centernesses,
            batch_img_metas=batch_img_metas, cfg=proposal_cfg)
        return losses, proposals


def _stride_value(stride) -> float:
    """Strides may be ints or ``(w, h)`` pairs; FCOS uses square ones."""
    return float(stride[0] if isinstance(stride, (tuple, list)) else stride)

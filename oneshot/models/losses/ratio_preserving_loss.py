"""Ratio-preserving loss of BHRL's RoI classifier."""
from typing import Optional

import torch
import torch.nn.functional as F
from mmdet.models.losses.utils import weight_reduce_loss
from mmdet.registry import MODELS
from torch import Tensor, nn


@MODELS.register_module()
class RatioPreservingLoss(nn.Module):
    """Softmax cross-entropy whose RoIs are re-weighted into two groups.

    BHRL (Yang et al., "Balanced and Hierarchical Relation Learning for
    One-shot Object Detection", CVPR 2022). A one-shot RoI batch holds few
    positives and many negatives, most of them easy. The loss splits the
    ``N`` RoIs of a batch into

    - the *hard* group: positives (label < background index) together with
      false positives, i.e. negatives whose best foreground probability
      exceeds the background probability (the RoI would be kept as a
      detection);
    - the *easy* group: the remaining negatives (true negatives),

    and gives the hard group a total weight of ``N * alpha`` and the easy
    group ``N * (1 - alpha)``, shared equally among each group's RoIs:
    ``w_i = N * alpha / |hard|`` or ``N * (1 - alpha) / |easy|``. The group
    of a RoI is decided on detached probabilities (it is a selection, not a
    quantity to differentiate).

    Normalisation: the weighted per-RoI cross-entropies are summed and
    divided by ``avg_factor`` (the bbox head passes ``N``, the number of
    RoIs with a positive label weight), so with the default reduction

        loss = alpha * mean_hard(CE) + (1 - alpha) * mean_easy(CE).

    The weights always sum to ``N``, so the loss is on the scale of plain
    mean cross-entropy, and when ``alpha`` equals the hard fraction
    ``|hard| / N`` every weight is 1 and the loss *is* plain cross-entropy.

    Empty group: when one group has no RoI (e.g. a batch without positives
    and without false positives, or one where every negative is a false
    positive), its share of the total weight goes to the other group, whose
    RoIs then weigh 1 each: the loss is that group's mean cross-entropy, the
    weights still sum to ``N`` and the loss stays finite. With ``N = 0`` the
    loss is 0 (still connected to ``cls_score`` for the autograd graph).

    RoIs with label weight 0 (ignored) belong to neither group and count
    nowhere; label weights in (0, 1] multiply the per-RoI losses.

    Args:
        alpha (float): Total weight share of positives + false positives.
            Defaults to 0.25 (BHRL).
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``. Defaults to
            ``'mean'``.
        loss_weight (float): Weight of the loss. Defaults to 1.0.

    Shapes:
        ``forward(cls_score, label, weight, avg_factor)``: ``cls_score``
        ``(N, num_classes + 1)`` logits with background last (mmdet's
        convention), ``label`` ``(N,)`` in ``[0, num_classes]``, ``weight``
        ``(N,)`` -> scalar (or ``(N,)`` with ``reduction='none'``).
    """

    def __init__(self,
                 alpha: float = 0.25,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if not 0.0 < alpha < 1.0:
            raise ValueError(
                f'RatioPreservingLoss: alpha={alpha} must lie in (0, 1); it '
                'is the share of the total weight given to positives and '
                'false positives (BHRL uses 0.25).')
        if reduction not in ('none', 'mean', 'sum'):
            raise ValueError(
                f'RatioPreservingLoss: reduction={reduction!r}; use '
                "'none', 'mean' or 'sum'.")
        self.alpha = alpha
        self.reduction = reduction
        self.loss_weight = loss_weight
        # Plain softmax classifier: mmdet's BBoxHead uses its default
        # channel count, activation and accuracy.
        self.use_sigmoid = False

    def group_weights(self, cls_score: Tensor, label: Tensor,
                      valid: Tensor) -> Tensor:
        """Per-RoI weights of the two groups (before label weights).

        Args:
            cls_score (Tensor): Logits ``(N, num_classes + 1)``.
            label (Tensor): Labels ``(N,)``; ``num_classes`` = background.
            valid (Tensor): Bool ``(N,)``, RoIs that count.

        Returns:
            Tensor: ``(N,)`` weights summing to ``valid.sum()``; 0 for
            invalid RoIs.
        """
        with torch.no_grad():
            bg_index = cls_score.shape[1] - 1
            prob = cls_score.detach().softmax(dim=1)
            positive = label < bg_index
            if bg_index > 0:
                false_positive = (~positive) & (
                    prob[:, :bg_index].max(dim=1).values > prob[:, bg_index])
            else:
                false_positive = torch.zeros_like(positive)
            hard = (positive | false_positive) & valid
            easy = valid & ~hard
            num = valid.sum().float()
            num_hard = hard.sum().float()
            num_easy = easy.sum().float()
            weights = cls_score.new_zeros(label.shape[0])
            if num_hard > 0 and num_easy > 0:
                weights[hard] = num * self.alpha / num_hard
                weights[easy] = num * (1.0 - self.alpha) / num_easy
            else:
                # One group is empty: the other takes the whole weight N.
                weights[valid] = 1.0
        return weights

    def forward(self,
                cls_score: Tensor,
                label: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None,
                **kwargs) -> Tensor:
        """Weighted cross-entropy of a batch of RoIs.

        Args:
            cls_score (Tensor): Logits ``(N, num_classes + 1)``.
            label (Tensor): Labels ``(N,)``, background = ``num_classes``.
            weight (Tensor, optional): Label weights ``(N,)``; 0 ignores a
                RoI. Defaults to all ones.
            avg_factor (float, optional): Normaliser of the ``'mean'``
                reduction. Defaults to the number of counted RoIs ``N``.
            reduction_override (str, optional): Overrides ``reduction``.

        Returns:
            Tensor: The loss.
        """
        if cls_score.dim() != 2 or label.shape != cls_score.shape[:1]:
            raise ValueError(
                'RatioPreservingLoss expects cls_score (N, num_classes + 1) '
                f'and label (N,), got {tuple(cls_score.shape)} and '
                f'{tuple(label.shape)}; it is a softmax classification loss '
                '(use_sigmoid=False heads).')
        reduction = reduction_override or self.reduction
        if weight is None:
            weight = cls_score.new_ones(label.shape[0])
        weight = weight.float()
        valid = weight > 0
        if not valid.any():
            return cls_score.sum() * 0.0
        group = self.group_weights(cls_score, label, valid)
        loss = F.cross_entropy(cls_score, label, reduction='none')
        if reduction != 'mean':
            avg_factor = None
        elif avg_factor is None:
            avg_factor = float(valid.sum())
        loss = weight_reduce_loss(
            loss, weight=group * weight, reduction=reduction,
            avg_factor=avg_factor)
        return self.loss_weight * loss

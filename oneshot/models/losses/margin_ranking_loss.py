"""Margin ranking loss over pairs of proposals of one image (CoAE)."""
from typing import Optional

import torch
from mmdet.registry import MODELS
from torch import Tensor, nn


@MODELS.register_module()
class MarginRankingLoss(nn.Module):
    """Rank the foreground scores of the proposals of each target image.

    CoAE (Hsieh et al., "One-Shot Object Detection with Co-Attention and
    Co-Excitation", NeurIPS 2019) adds this loss to the RoI classifier's
    cross-entropy. Cross-entropy scores every proposal on its own; the
    ranking loss compares proposals of the same image with each other, so
    that inside one target image every proposal of the query's class
    outranks every background proposal by a clear gap. For a pair
    ``(i, j)`` of proposals of one image with foreground scores
    ``s_i, s_j`` in ``[0, 1]``:

    - same label (both foreground or both background):
      ``max(0, |s_i - s_j| - margin)`` — their scores stay within
      ``margin`` of each other;
    - different labels, ``i`` foreground and ``j`` background:
      ``max(0, (1 - margin) - (s_i - s_j))`` — the foreground score
      exceeds the background one by at least ``1 - margin``.

    Per image the pair losses are averaged over all its unordered pairs;
    the loss is the mean over the images that hold both labels.

    An image whose proposals all carry one label (or that has a single
    proposal) has nothing to rank against: it contributes zero (and no
    NaN from an empty mean). The same-label term alone would only squeeze
    scores together, which is not what the loss is for; and images are
    averaged over those that do hold both labels, so that ``loss_weight``
    means the same whether or not a batch contains such an image.

    Args:
        margin (float): Margin of the pair terms. Defaults to 0.3 (CoAE).
        loss_weight (float): Weight of the loss. Defaults to 3.0 (CoAE).

    Shapes:
        ``forward(scores, labels, groups)``: ``scores`` ``(N,)`` foreground
        probabilities, ``labels`` ``(N,)`` (non-zero/True = foreground),
        ``groups`` ``(N,)`` the image (episode) index of each proposal ->
        scalar.
    """

    def __init__(self, margin: float = 0.3, loss_weight: float = 3.0) -> None:
        super().__init__()
        if not 0.0 <= margin <= 1.0:
            raise ValueError(
                f'MarginRankingLoss: margin={margin} must lie in [0, 1]; '
                'scores are probabilities and different-label pairs must be '
                'separated by 1 - margin.')
        self.margin = margin
        self.loss_weight = loss_weight

    def forward(self,
                scores: Tensor,
                labels: Tensor,
                groups: Optional[Tensor] = None) -> Tensor:
        """Compute the weighted ranking loss.

        Args:
            scores (Tensor): Foreground probabilities ``(N,)``.
            labels (Tensor): ``(N,)``, bool or integer; True / non-zero
                marks a foreground proposal.
            groups (Tensor, optional): ``(N,)`` integer image index of each
                proposal (``rois[:, 0]``); pairs are only formed inside one
                image. ``None`` means all proposals come from one image.

        Returns:
            Tensor: Scalar loss, ``loss_weight`` times the mean over images
            with both labels of the mean pair loss.
        """
        if scores.dim() != 1 or labels.shape != scores.shape:
            raise ValueError(
                'MarginRankingLoss expects scores and labels of shape (N,), '
                f'got {tuple(scores.shape)} and {tuple(labels.shape)}.')
        if groups is None:
            groups = scores.new_zeros(scores.shape, dtype=torch.long)
        elif groups.shape != scores.shape:
            raise ValueError(
                f'MarginRankingLoss: groups {tuple(groups.shape)} must have '
                f'the shape of scores {tuple(scores.shape)}.')
        groups = groups.long()
        foreground = labels.bool()

        # Pair (i, j), i < j, of the same image.
        num = scores.shape[0]
        upper = torch.ones(num, num, dtype=torch.bool,
                           device=scores.device).triu(diagonal=1)
        pairs = upper & (groups[:, None] == groups[None, :])
        same_label = foreground[:, None] == foreground[None, :]

        gap = scores[:, None] - scores[None, :]  # s_i - s_j
        same_loss = (gap.abs() - self.margin).clamp(min=0)
        # Orient different-label pairs as foreground minus background.
        sign = foreground.to(scores.dtype) * 2 - 1  # +1 fg, -1 bg
        fg_minus_bg = gap * sign[:, None]
        diff_loss = ((1 - self.margin) - fg_minus_bg).clamp(min=0)
        pair_loss = torch.where(same_label, same_loss, diff_loss)

        # Per image: sum and count of its pairs (indexed by the row's image).
        _, image = torch.unique(groups, return_inverse=True)
        num_images = int(image.max()) + 1 if num else 0
        pair_loss = (pair_loss * pairs).sum(dim=1)
        image_sum = scores.new_zeros(num_images).index_add(0, image, pair_loss)
        image_pairs = scores.new_zeros(num_images).index_add(
            0, image, pairs.sum(dim=1).to(scores.dtype))
        num_fg = scores.new_zeros(num_images).index_add(
            0, image, foreground.to(scores.dtype))
        num_all = scores.new_zeros(num_images).index_add(
            0, image, torch.ones_like(scores))
        ranked = (num_fg > 0) & (num_fg < num_all)
        if not ranked.any():
            # Keep the graph connected (distributed training expects every
            # loss to depend on the parameters) without adding anything.
            return scores.sum() * 0
        per_image = image_sum[ranked] / image_pairs[ranked]
        return self.loss_weight * per_image.mean()

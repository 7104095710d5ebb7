"""L1-difference matcher of the Siamese baseline (and BHRL's image level)."""
from typing import List, Sequence, Tuple

import torch
from mmcv.cnn import ConvModule
from mmdet.registry import MODELS
from mmdet.utils import OptConfigType, OptMultiConfig
from torch import Tensor, nn

from .base import BaseMatcher
from .matcher_utils import check_levels


@MODELS.register_module()
class L1DiffMatcher(BaseMatcher):
    """Condition target maps on a query by an L1 difference.

    Siamese Mask R-CNN (Michaelis et al., arXiv 1811.11507): per level,
    ``D = conv1x1(cat(t, |t - GAP(q)|))``. Where a target position looks like
    the query, ``|t - GAP(q)|`` is small in every channel, which the 1x1 conv
    turns into a "match here" signal for the RPN and RoI head.

    Activation: ``act_cfg`` defaults to ReLU after the 1x1 conv. In the C4
    detectors the fused map replaces the layer3 output that the RoI head's
    layer4 was pre-trained on, and that output is post-ReLU (non-negative);
    a ReLU keeps the fused map in that range. In FPN detectors the RPN and
    RoI heads start with conv/FC + ReLU anyway, so the extra ReLU costs
    little. Set ``act_cfg=None`` for the purely linear variant.

    Args:
        in_channels (int): Channels ``C`` of target and query maps.
        out_channels (int): Channels of the fused maps. Defaults to 384
            (Siamese Mask R-CNN, BHRL); heads after the matcher must take
            this many input channels.
        shared (bool): One 1x1 conv for every level (True) or one per level
            (False, needs ``num_levels``). Defaults to True.
        num_levels (int): Number of feature levels when ``shared=False``.
            Defaults to 1.
        act_cfg (dict, optional): Activation after the conv. Defaults to
            ReLU.
        init_cfg (dict, optional): Initialisation config.

    Shapes:
        ``forward(target_feats, query_feats)`` takes per-level tuples of
        ``(B, C, H_l, W_l)`` and ``(B, C, h_l, w_l)`` (one row per episode)
        and returns a tuple of ``(B, out_channels, H_l, W_l)``.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int = 384,
                 shared: bool = True,
                 num_levels: int = 1,
                 act_cfg: OptConfigType = dict(type='ReLU'),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.shared = shared
        self.num_levels = num_levels
        num_convs = 1 if shared else num_levels
        self.fusion_convs = nn.ModuleList([
            ConvModule(2 * in_channels, out_channels, 1, act_cfg=act_cfg)
            for _ in range(num_convs)
        ])

    def forward(self, target_feats: Sequence[Tensor],
                query_feats: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        """Fuse the query into every target level.

        Args:
            target_feats (Sequence[Tensor]): Per level ``(B, C, H, W)``.
            query_feats (Sequence[Tensor]): Per level ``(B, C, h, w)``,
                already fused over the K shots.

        Returns:
            tuple[Tensor]: Per level ``(B, out_channels, H, W)``.
        """
        check_levels(self, target_feats, query_feats)
        outs: List[Tensor] = []
        for level, (t, q) in enumerate(zip(target_feats, query_feats)):
            pooled = q.mean(dim=(2, 3), keepdim=True)
            conv = self.fusion_convs[0 if self.shared else level]
            outs.append(conv(torch.cat([t, (t - pooled).abs()], dim=1)))
        return tuple(outs)

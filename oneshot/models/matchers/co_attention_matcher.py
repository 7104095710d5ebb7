"""Co-attention and co-excitation matcher (CoAE)."""
from typing import Optional, Sequence, Tuple

import torch
from mmcv.cnn import ConvModule
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptMultiConfig
from torch import Tensor, nn

from .base import BaseMatcher, MatcherOutput
from .matcher_utils import check_levels, flatten_positions, unflatten_positions


@MODELS.register_module()
class CoAttentionMatcher(BaseMatcher):
    """Non-local co-attention followed by squeeze-and-co-excitation.

    CoAE (Hsieh et al., "One-Shot Object Detection with Co-Attention and
    Co-Excitation", NeurIPS 2019). For each feature level, with target map
    ``t`` ``(B, C, H, W)`` and query map ``q`` ``(B, C, h, w)``:

    1. **Co-attention** (a non-local block run both ways). 1x1 convs
       ``g``, ``theta``, ``phi`` reduce to ``C' = inter_channels``
       (``C/2``). One affinity relates every query position ``i`` to every
       target position ``j``: ``F[i, j] = theta(q)_i . phi(t)_j``. It is a
       plain dot product normalised by the number of positions summed over
       (no softmax, as in the paper), so the context added to a position
       grows with how strongly it correlates with the other image instead of
       always being a convex mix:

       - the target gains query context:
         ``t' = t + W(sum_i F[i, j] g(q)_i / (h*w))``;
       - the query gains target context:
         ``q' = q + Q(sum_j F[i, j] g(t)_j / (H*W))``.

       ``W`` and ``Q`` are 1x1 conv + norm whose norm scale and shift start
       at zero, so the block is the identity at initialisation and the
       pre-trained backbone features reach the heads unchanged until the
       co-attention has learnt something. ``g`` is shared by both
       directions (one backbone encodes both images).
    2. **Squeeze and co-excitation.** A channel gate from the co-attended
       query, ``w = sigmoid(MLP(avgpool(q')) + MLP(maxpool(q')))`` (one MLP
       ``C -> C/reduction -> C`` with ReLU, shared by both pools), re-weights
       the channels of both maps: ``t'' = w * t'``, ``q'' = w * q'``. The
       query decides which channels matter for its class, in the target too.

    Returns ``MatcherOutput(rpn=t', roi=t'', query=q'')``: the RPN proposes
    on the co-attended target, the RoI head pools proposals from the
    excited target and compares them with the excited query (paper, Fig. 2).

    Cost: the affinity is ``(h*w) x (H*W)`` per episode (64 x ~2400 for a
    128-px query and a 600x1000 target at stride 16), far below the
    backbone's cost. Padded target positions (zeros of the normalised
    image) take part in the target-context sum like any other position.

    Args:
        in_channels (int): Channels ``C`` of target and query maps; the
            outputs keep ``C`` channels so the heads configured for the
            backbone work unchanged.
        inter_channels (int, optional): Width ``C'`` of ``g``, ``theta``,
            ``phi``. Defaults to ``in_channels // 2`` (paper).
        reduction (int): Reduction of the co-excitation MLP. Defaults to
            16 (paper).
        norm_cfg (dict): Norm of the zero-initialised output convs ``W``
            and ``Q``. Defaults to BN (paper).
        init_cfg (dict, optional): Initialisation config.

    Shapes:
        ``forward(target_feats, query_feats)``: per-level tuples of
        ``(B, C, H_l, W_l)`` and ``(B, C, h_l, w_l)`` (one row per
        episode) -> :class:`MatcherOutput` whose ``rpn``, ``roi`` and
        ``query`` are tuples of ``(B, C, H_l, W_l)``, ``(B, C, H_l, W_l)``
        and ``(B, C, h_l, w_l)``. All levels share the weights.
    """

    # The residual branches start at zero: co-attention starts as the
    # identity (BaseMatcher.zero_init_outputs).
    zero_init_norms = ('target_out', 'query_out')

    def __init__(self,
                 in_channels: int,
                 inter_channels: Optional[int] = None,
                 reduction: int = 16,
                 norm_cfg: ConfigType = dict(type='BN'),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        inter_channels = inter_channels or in_channels // 2
        if inter_channels < 1:
            raise ValueError(
                f'CoAttentionMatcher: in_channels={in_channels} gives '
                'inter_channels=0; set inter_channels explicitly.')
        if reduction < 1 or in_channels // reduction < 1:
            raise ValueError(
                f'CoAttentionMatcher: reduction={reduction} must be >= 1 and '
                f'at most in_channels={in_channels}.')
        self.in_channels = in_channels
        self.inter_channels = inter_channels
        self.g = nn.Conv2d(in_channels, inter_channels, 1)
        self.theta = nn.Conv2d(in_channels, inter_channels, 1)
        self.phi = nn.Conv2d(in_channels, inter_channels, 1)
        self.target_out = ConvModule(
            inter_channels, in_channels, 1, norm_cfg=norm_cfg, act_cfg=None)
        self.query_out = ConvModule(
            inter_channels, in_channels, 1, norm_cfg=norm_cfg, act_cfg=None)
        hidden = in_channels // reduction
        self.excitation_mlp = nn.Sequential(
            nn.Linear(in_channels, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, in_channels))
        self.zero_init_outputs()

    def forward(self, target_feats: Sequence[Tensor],
                query_feats: Sequence[Tensor]) -> MatcherOutput:
        """Co-attend and co-excite every level.

        Args:
            target_feats (Sequence[Tensor]): Per level ``(B, C, H, W)``.
            query_feats (Sequence[Tensor]): Per level ``(B, C, h, w)``,
                already fused over the K shots.

        Returns:
            MatcherOutput: ``rpn`` the co-attended targets, ``roi`` the
            excited targets, ``query`` the excited queries.
        """
        check_levels(self, target_feats, query_feats)
        rpn, roi, query = [], [], []
        for t, q in zip(target_feats, query_feats):
            t_co, q_co = self.co_attention(t, q)
            t_ex, q_ex = self.co_excitation(t_co, q_co)
            rpn.append(t_co)
            roi.append(t_ex)
            query.append(q_ex)
        return MatcherOutput(tuple(rpn), tuple(roi), tuple(query))

    def co_attention(self, target: Tensor,
                     query: Tensor) -> Tuple[Tensor, Tensor]:
        """Non-local co-attention in both directions.

        Args:
            target (Tensor): ``(B, C, H, W)``.
            query (Tensor): ``(B, C, h, w)``.

        Returns:
            tuple[Tensor, Tensor]: The target with query context
            ``(B, C, H, W)`` and the query with target context
            ``(B, C, h, w)``.
        """
        t_hw, q_hw = target.shape[-2:], query.shape[-2:]
        g_t = flatten_positions(self.g(target))  # (B, Nt, C')
        g_q = flatten_positions(self.g(query))  # (B, Nq, C')
        theta_q = flatten_positions(self.theta(query))  # (B, Nq, C')
        phi_t = flatten_positions(self.phi(target))  # (B, Nt, C')
        affinity = theta_q @ phi_t.transpose(1, 2)  # (B, Nq, Nt)
        target_context = affinity.transpose(1, 2) @ g_q / g_q.shape[1]
        query_context = affinity @ g_t / g_t.shape[1]
        target = target + self.target_out(
            unflatten_positions(target_context, t_hw))
        query = query + self.query_out(
            unflatten_positions(query_context, q_hw))
        return target, query

    def co_excitation(self, target: Tensor,
                      query: Tensor) -> Tuple[Tensor, Tensor]:
        """Squeeze the query into a channel gate and excite both maps.

        Args:
            target (Tensor): Co-attended target ``(B, C, H, W)``.
            query (Tensor): Co-attended query ``(B, C, h, w)``.

        Returns:
            tuple[Tensor, Tensor]: ``target * w`` and ``query * w`` with the
            gate ``w`` ``(B, C, 1, 1)`` in ``(0, 1)``.
        """
        gate = self.channel_gate(query)[..., None, None]
        return target * gate, query * gate

    def channel_gate(self, query: Tensor) -> Tensor:
        """``sigmoid(MLP(avgpool(q)) + MLP(maxpool(q)))``, shape ``(B, C)``."""
        avg = query.mean(dim=(2, 3))
        peak = query.amax(dim=(2, 3))
        return torch.sigmoid(
            self.excitation_mlp(avg) + self.excitation_mlp(peak))

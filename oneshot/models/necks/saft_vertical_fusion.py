"""SaFT's vertical fusion module (VFM): cross-scale attention over a
feature pyramid."""
from typing import List, Sequence, Tuple

import torch
from mmcv.cnn.bricks.transformer import FFN
from mmdet.registry import MODELS
from mmdet.utils import OptMultiConfig
from mmengine.model import BaseModule
from torch import Tensor, nn
from torch.nn import functional as F

from ..layers import ProjectedAttention
from ..matchers.matcher_utils import flatten_positions


@MODELS.register_module()
class SaFTVerticalFusion(BaseModule):
    """Vertical fusion: every pyramid position attends to the same image
    location on every level of the pyramid.

    SaFT (Zhao et al., "Semantic-aligned Fusion Transformer for One-shot
    Object Detection", CVPR 2022) strengthens the feature pyramid across
    scales with attention before the query and the target are fused (the
    horizontal fusion, :class:`~oneshot.models.matchers.SaFTHorizontalFusion`).
    The paper's description is followed where it is known: attention across
    the levels of one pyramid, used by the one-stage detector before the
    cross-sample fusion. The rest is chosen here:

    - **Where it runs: a neck after the FPN** (``neck=[FPN, SaFTVerticalFusion]``,
      mmengine builds the list as a ``Sequential``, the pattern of mmdet's
      Libra R-CNN ``BFP``). The detectors run the backbone and neck once
      per distinct target image and once per distinct query set, so this
      target-only work is done once per target image however many queries
      it is searched with, and never per episode. The same weights enhance
      the query patches' pyramids, as the Siamese backbone and FPN do: the
      horizontal fusion then compares two pyramids built by one function.
    - **What "vertical" attends to.** For output level ``l`` and position
      ``p``, the attention query is ``p``'s token on level ``l`` and the
      ``L`` keys/values are the tokens at the same image location on all
      ``L`` levels (each level resized to level ``l``'s grid; its own level
      included), with a learned level embedding added to queries and keys.
      Full attention over every position of every level would cost
      ``O((sum_l H_l W_l)^2)`` (about 1.7e8 pairs at 1000x600 with P3-P7);
      the per-location form is ``O(L * sum_l H_l W_l)``, keeps each token's
      own location and still lets every scale read every other scale
      (semantics from the coarse levels, detail from the fine ones).
    - **Resizing.** Keys and values are projected at each level's own
      resolution and then resized (finer levels: adaptive average pooling,
      coarser levels: bilinear, ``align_corners=False``). Both resizings are
      linear with weights summing to one, so this equals projecting the
      resized maps, for a fraction of the cost.
    - **Layer form.** One pre-norm transformer layer, weights shared by all
      levels: ``x <- x + Drop(Attn(LN(x)))``, ``x <- x + FFN(LN(x))``
      (mmcv's ``FFN``). Pre-norm keeps an identity path from the FPN maps to
      the following modules, so at the start the heads see (nearly) the FPN
      features they were designed for.
    - **Level embeddings** start from ``N(0, 0.02)`` (small, so at the start
      content decides the attention).

    Positions of a padded target include the padding, as for any conv; no
    padding mask reaches the neck.

    Args:
        in_channels (int): Channels ``C`` of every level (the FPN's
            ``out_channels``); the output has the same.
        num_levels (int): Number of pyramid levels ``L`` (the FPN's
            ``num_outs``).
        num_heads (int): Attention heads; must divide ``in_channels``.
            Defaults to 8.
        feedforward_channels (int): FFN hidden width. Defaults to 1024.
        dropout (float): Dropout on attention weights, the attention
            residual and in the FFN. Defaults to 0.1.
        init_cfg (dict, optional): Initialisation config.

    Shapes:
        ``forward(feats)``: ``L`` maps ``(B, C, H_l, W_l)`` -> ``L`` maps of
        the same shapes.
    """

    def __init__(self,
                 in_channels: int,
                 num_levels: int,
                 num_heads: int = 8,
                 feedforward_channels: int = 1024,
                 dropout: float = 0.1,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_levels < 2:
            raise ValueError(
                f'SaFTVerticalFusion: num_levels={num_levels}; cross-scale '
                'fusion needs at least 2 pyramid levels.')
        if in_channels % num_heads:
            raise ValueError(
                f'SaFTVerticalFusion: in_channels={in_channels} must be '
                f'divisible by num_heads={num_heads}.')
        self.in_channels = in_channels
        self.num_levels = num_levels
        self.level_embed = nn.Parameter(
            torch.empty(num_levels, in_channels).normal_(std=0.02))
        self.norm_attention = nn.LayerNorm(in_channels)
        self.attention = ProjectedAttention(in_channels, num_heads, dropout)
        self.dropout = nn.Dropout(dropout)
        self.norm_ffn = nn.LayerNorm(in_channels)
        self.ffn = FFN(
            embed_dims=in_channels,
            feedforward_channels=feedforward_channels,
            num_fcs=2,
            ffn_drop=dropout,
            add_identity=True)

    def forward(self, feats: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        """Enhance every level with the other levels at the same location.

        Args:
            feats (Sequence[Tensor]): ``L`` maps ``(B, C, H_l, W_l)``.

        Returns:
            tuple[Tensor]: ``L`` maps of the same shapes.
        """
        feats = tuple(feats)
        self._check(feats)
        sizes = [tuple(f.shape[-2:]) for f in feats]
        tokens = [flatten_positions(f) for f in feats]  # (B, HW, C)
        normed = [self.norm_attention(t) for t in tokens]
        embeds = self.level_embed.to(feats[0].dtype)
        keys, values = [], []
        for level, (n, size) in enumerate(zip(normed, sizes)):
            keys.append(_token_map(
                self.attention.project(n + embeds[level], 'k'), size))
            values.append(_token_map(self.attention.project(n, 'v'), size))
        outs: List[Tensor] = []
        for level, (x, n, size) in enumerate(zip(tokens, normed, sizes)):
            q = self.attention.project(n + embeds[level], 'q')
            attended = self._attend_levels(
                q, [flatten_positions(_resize(m, size)) for m in keys],
                [flatten_positions(_resize(m, size)) for m in values])
            x = x + self.dropout(attended)
            x = self.ffn(self.norm_ffn(x), identity=x)
            outs.append(_token_map(x, size).contiguous())
        return tuple(outs)

    def _attend_levels(self, q: Tensor, keys: List[Tensor],
                       values: List[Tensor]) -> Tensor:
        """Multi-head attention of every token over its own location's
        ``L`` level tokens.

        The same computation as ``self.attention.attend`` with ``L`` keys
        per token (tests/test_saft.py checks it against
        ``nn.MultiheadAttention``), written out because with only ``L``
        keys the head split and transposes of
        ``F.scaled_dot_product_attention`` cost several times the attention
        itself.

        Args:
            q (Tensor): Projected attention queries ``(B, N, C)``.
            keys (list[Tensor]): ``L`` projected keys ``(B, N, C)``, level
                ``j``'s key of every token's location.
            values (list[Tensor]): ``L`` projected values ``(B, N, C)``.

        Returns:
            Tensor: ``(B, N, C)`` after the output projection.
        """
        heads = self.attention.num_heads
        scale = (self.in_channels // heads)**-0.5
        q = q.unflatten(-1, (heads, -1)) * scale  # (B, N, heads, C/heads)
        logits = torch.stack(
            [(q * k.unflatten(-1, (heads, -1))).sum(-1) for k in keys],
            dim=-1)  # (B, N, heads, L)
        weights = logits.softmax(dim=-1)
        if self.training and self.attention.attn.dropout > 0:
            weights = F.dropout(weights, p=self.attention.attn.dropout)
        out = sum(weights[..., j, None] * v.unflatten(-1, (heads, -1))
                  for j, v in enumerate(values))
        return self.attention.attn.out_proj(out.flatten(-2))

    def _check(self, feats: Tuple[Tensor, ...]) -> None:
        if len(feats) != self.num_levels:
            raise ValueError(
                f'SaFTVerticalFusion was built with num_levels='
                f'{self.num_levels} but received {len(feats)} levels; set '
                "num_levels to the FPN's num_outs.")
        for level, f in enumerate(feats):
            if f.dim() != 4 or f.shape[1] != self.in_channels:
                raise ValueError(
                    f'SaFTVerticalFusion level {level}: expected (B, '
                    f'{self.in_channels}, H, W) (in_channels = the FPN\'s '
                    f'out_channels), got {tuple(f.shape)}.')


def _token_map(tokens: Tensor, size: Tuple[int, int]) -> Tensor:
    """``(B, H*W, C)`` contiguous tokens as a ``(B, C, H, W)`` view in
    channels-last memory (no copy; the resizing kernels are fast on it)."""
    b, _, c = tokens.shape
    return tokens.view(b, size[0], size[1], c).permute(0, 3, 1, 2)


def _resize(x: Tensor, size: Tuple[int, int]) -> Tensor:
    """Resize a map to ``size``: average-pool a finer map, interpolate a
    coarser one bilinearly (both are linear, weights summing to one)."""
    h, w = x.shape[-2:]
    if (h, w) == tuple(size):
        return x
    if h >= size[0] and w >= size[1]:
        return F.adaptive_avg_pool2d(x, size)
    return F.interpolate(x, size=size, mode='bilinear', align_corners=False)


__all__ = ['SaFTVerticalFusion']

"""Pieces shared by the matchers (L1 difference, CAT, CoAE, AIT, ...).

Feature maps travel through the detector as ``(B, C, H, W)``; attention
works on sequences of positions ``(B, H*W, C)``. The helpers here convert
between the two, build 2D sine positional encodings with mmdet's
:class:`SinePositionalEncoding`, and provide one cross-attention layer
(attention over the positions of another map + residual + LayerNorm + FFN)
that two-stream and co-attention matchers stack. :func:`check_levels`
validates the per-level inputs every matcher receives.
"""
from typing import Optional, Sequence, Tuple

from mmcv.cnn.bricks.transformer import FFN
from mmdet.models.layers import SinePositionalEncoding
from torch import Tensor, nn


def flatten_positions(x: Tensor) -> Tensor:
    """Turn a feature map into a sequence of position tokens.

    Args:
        x (Tensor): Feature map of shape ``(B, C, H, W)``.

    Returns:
        Tensor: Tokens of shape ``(B, H*W, C)``, row-major positions.
    """
    return x.flatten(2).transpose(1, 2)


def unflatten_positions(tokens: Tensor, hw: Tuple[int, int]) -> Tensor:
    """Inverse of :func:`flatten_positions`.

    Args:
        tokens (Tensor): Tokens of shape ``(B, H*W, C)``.
        hw (tuple[int, int]): Spatial size ``(H, W)`` of the map.

    Returns:
        Tensor: Feature map of shape ``(B, C, H, W)``.
    """
    b, n, c = tokens.shape
    h, w = hw
    if n != h * w:
        raise ValueError(f'{n} tokens cannot be reshaped to {h}x{w}.')
    return tokens.transpose(1, 2).reshape(b, c, h, w)


class PositionEncoding2D(nn.Module):
    """2D sine positional encoding of a whole (unpadded) feature map.

    Wraps :class:`mmdet.models.layers.SinePositionalEncoding` with
    ``normalize=True``: coordinates are scaled to ``[0, 2*pi]`` over the map,
    so an ``8x8`` query map and a ``38x63`` target map both span the full
    range. Positions therefore mean "where inside this image", which is what
    a query patch (one object, centred) and a target can share.

    Args:
        embed_dims (int): Channels of the encoding (even).
    """

    def __init__(self, embed_dims: int) -> None:
        super().__init__()
        if embed_dims % 2:
            raise ValueError(
                f'embed_dims must be even for sine encodings, got '
                f'{embed_dims}.')
        self.encoding = SinePositionalEncoding(
            num_feats=embed_dims // 2, normalize=True)

    def forward(self, x: Tensor) -> Tensor:
        """Encode the positions of ``x``.

        Args:
            x (Tensor): Feature map ``(B, C, H, W)``; only its shape,
                device and dtype are used.

        Returns:
            Tensor: Encoding of shape ``(B, embed_dims, H, W)``.
        """
        # mask=None: every position is valid (no padding mask is available
        # at the matcher; padding only shifts borders, as in any conv net).
        return self.encoding(None, x).to(x.dtype)


class CrossAttentionLayer(nn.Module):
    """One post-norm cross-attention layer over positions (DETR style).

    ``x <- LN(x + MHA(x + pos_x, y + pos_y, y))``, then
    ``x <- LN(x + FFN(x))``. The attended values come from ``y`` without
    positional encodings so that what is read is content, while where to
    read from may depend on position.

    Args:
        embed_dims (int): Token channels ``D``.
        num_heads (int): Attention heads; must divide ``embed_dims``.
        feedforward_channels (int): Hidden width of the FFN.
        dropout (float): Dropout on attention weights, residuals and FFN.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 feedforward_channels: int,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(
            embed_dims, num_heads, dropout=dropout, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.norm_attention = nn.LayerNorm(embed_dims)
        # mmcv's FFN: Linear-ReLU-Dropout-Linear-Dropout with an identity
        # shortcut added inside.
        self.ffn = FFN(
            embed_dims=embed_dims,
            feedforward_channels=feedforward_channels,
            num_fcs=2,
            ffn_drop=dropout,
            add_identity=True)
        self.norm_ffn = nn.LayerNorm(embed_dims)

    def forward(self,
                x: Tensor,
                y: Tensor,
                pos_x: Optional[Tensor] = None,
                pos_y: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """Update ``x`` by attending to ``y``.

        Args:
            x (Tensor): Tokens being updated, ``(B, N, D)``.
            y (Tensor): Tokens attended to, ``(B, M, D)``.
            pos_x (Tensor, optional): Positional encoding of ``x``,
                ``(B, N, D)``.
            pos_y (Tensor, optional): Positional encoding of ``y``,
                ``(B, M, D)``.

        Returns:
            tuple[Tensor, Tensor]: The updated tokens ``(B, N, D)`` and the
            raw attention read-out ``(B, N, D)`` (what each ``x`` token took
            from ``y``, before the residual), which matchers compare with
            ``x`` to measure how well a position matches.
        """
        attended, _ = self.attention(
            _with_pos(x, pos_x), _with_pos(y, pos_y), y, need_weights=False)
        x = self.norm_attention(x + self.dropout(attended))
        x = self.norm_ffn(self.ffn(x))
        return x, attended


def _with_pos(x: Tensor, pos: Optional[Tensor]) -> Tensor:
    return x if pos is None else x + pos


def check_levels(matcher: nn.Module, target_feats: Sequence[Tensor],
                 query_feats: Sequence[Tensor]) -> None:
    """Validate the per-level inputs every matcher receives."""
    name = type(matcher).__name__
    if len(target_feats) != len(query_feats):
        raise ValueError(
            f'{name} got {len(target_feats)} target levels but '
            f'{len(query_feats)} query levels; both come from the same '
            'backbone/neck and must match.')
    if not getattr(matcher, 'shared', True) and \
            len(target_feats) != matcher.num_levels:
        raise ValueError(
            f'{name} was built with num_levels={matcher.num_levels} '
            f'(shared=False) but received {len(target_feats)} levels; set '
            'num_levels to the number of neck outputs.')
    for level, (t, q) in enumerate(zip(target_feats, query_feats)):
        if t.shape[:2] != q.shape[:2]:
            raise ValueError(
                f'{name} level {level}: target {tuple(t.shape)} and query '
                f'{tuple(q.shape)} differ in batch or channels; the detector '
                'must pass one query row per target row.')
        if t.shape[1] != matcher.in_channels:
            raise ValueError(
                f'{name} level {level}: expected {matcher.in_channels} '
                f'channels (in_channels) but got {t.shape[1]}; set the '
                "matcher's in_channels to the backbone/neck output channels.")


__all__ = [
    'flatten_positions', 'unflatten_positions', 'PositionEncoding2D',
    'CrossAttentionLayer', 'check_levels'
]

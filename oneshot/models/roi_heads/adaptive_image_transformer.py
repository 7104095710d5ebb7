"""The per-proposal encoder-decoder transformer of AIT."""
from typing import NamedTuple, Optional

import torch
from mmdet.registry import MODELS
from mmdet.utils import OptMultiConfig
from mmengine.model import BaseModule
from torch import Tensor, nn

from ..matchers.matcher_utils import (CrossAttentionLayer, PositionEncoding2D,
                                      flatten_positions, unflatten_positions)


class QueryMemory(NamedTuple):
    """The encoder's output for a batch of episodes (one row per episode).

    Attributes:
        tokens (Tensor): Encoded query tokens ``(B, h*w, D)``.
        pos (Tensor): Their positional encodings ``(B, h*w, D)``.
    """
    tokens: Tensor
    pos: Tensor


class _DecoderLayer(nn.Module):
    """Post-norm decoder layer (DETR style): self-attention over the
    proposal's positions, then cross-attention to the encoded query + FFN
    (:class:`CrossAttentionLayer`)."""

    def __init__(self, embed_dims: int, num_heads: int,
                 feedforward_channels: int, dropout: float) -> None:
        super().__init__()
        self.self_attention = nn.MultiheadAttention(
            embed_dims, num_heads, dropout=dropout, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.norm_self_attention = nn.LayerNorm(embed_dims)
        self.cross_attention = CrossAttentionLayer(
            embed_dims, num_heads, feedforward_channels, dropout)


@MODELS.register_module()
class AdaptiveImageTransformer(BaseModule):
    """Translate each proposal's feature map given its episode's query.

    AIT (Chen et al., "Adaptive Image Transformer for One-Shot Object
    Detection", CVPR 2021) borrows the encoder-decoder of machine
    translation: every 7x7 proposal feature is "translated" so that it can
    be compared better with the query. Sizes from the paper: a 1x1 conv
    ``C -> embed_dims`` (1024 -> 512), sinusoidal position encoding,
    ``embed_dims`` 512, 8 heads, FFN 2048, one encoder and one decoder
    layer, dropout 0.1, and a 1x1 conv back to ``C``.

    How the two sequences enter (the paper leaves it open; the choice and
    its reasons, docs/methods.md, "AIT"):

    - **Encoder: the query.** The query's tokens (``h*w`` = 8x8 for a
      128-px query at stride 16) go through a 1x1 conv, the encoder's
      self-attention and FFN (:meth:`encode_query`). They depend on the
      episode only, so this runs once per episode, however many proposals
      the episode has; its output is the decoder's memory.
    - **Decoder: the proposal.** The proposal's 49 tokens go through their
      own 1x1 conv, self-attention among themselves, cross-attention to the
      episode's memory, and an FFN (:meth:`translate`); the result, back on
      the proposal's 7x7 grid and at ``C`` channels, is the translated
      proposal. Keeping the proposal's own grid lets the selective channel
      attention weigh proposal and translation position by position and
      lets the shared head (layer4) read it as it reads any RoI.
    - **Positions**: 2D sine encodings normalised per map
      (:class:`PositionEncoding2D`), so the 7x7 proposal grid and the 8x8
      query grid both span the same range: "top-left of the object" means
      the same in both crops. They are added to attention queries and keys
      at every attention, values stay content (DETR).
    - **Layers**: post-norm (attention/FFN + residual, then LayerNorm), as
      in the original Transformer; no causal mask (image positions have no
      order).
    - **Query-only work once**: cross-attention has no interaction
      between attending tokens, so the decoder's cross-attention runs once
      per episode on all its proposals' tokens laid end to end. The key and
      value projections of the memory are therefore also computed once per
      episode, and the result equals running each proposal on its own.
    - **Initialisation**: Xavier-uniform for every weight matrix
      (the original Transformer's recipe).

    Args:
        in_channels (int): Channels ``C`` of proposal and query maps.
            Defaults to 1024 (ResNet layer3).
        embed_dims (int): Transformer width ``D``. Defaults to 512.
        num_heads (int): Attention heads. Defaults to 8.
        feedforward_channels (int): FFN hidden width. Defaults to 2048.
        num_encoder_layers (int): Defaults to 1.
        num_decoder_layers (int): Defaults to 1.
        dropout (float): Dropout in attention, residuals and FFN. Defaults
            to 0.1.
        init_cfg (dict, optional): Initialisation config.

    Shapes:
        ``encode_query(query)``: ``(B, C, h, w)`` -> :class:`QueryMemory`
        of ``(B, h*w, D)`` tensors.
        ``translate(proposals, memory, query_inds)``: ``(N, C, s, s)``, a
        :class:`QueryMemory`, ``(N,)`` long (each proposal's episode) ->
        ``(N, C, s, s)``.
        ``forward(proposals, query, query_inds=None)``: both steps; without
        ``query_inds`` the query has one row per proposal.
    """

    def __init__(self,
                 in_channels: int = 1024,
                 embed_dims: int = 512,
                 num_heads: int = 8,
                 feedforward_channels: int = 2048,
                 num_encoder_layers: int = 1,
                 num_decoder_layers: int = 1,
                 dropout: float = 0.1,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if embed_dims % num_heads:
            raise ValueError(
                f'AdaptiveImageTransformer: embed_dims={embed_dims} must be '
                f'divisible by num_heads={num_heads}.')
        if num_encoder_layers < 1 or num_decoder_layers < 1:
            raise ValueError(
                'AdaptiveImageTransformer needs at least one encoder and one '
                f'decoder layer, got num_encoder_layers={num_encoder_layers}'
                f', num_decoder_layers={num_decoder_layers}.')
        self.in_channels = in_channels
        self.embed_dims = embed_dims
        self.query_proj = nn.Conv2d(in_channels, embed_dims, 1)
        self.proposal_proj = nn.Conv2d(in_channels, embed_dims, 1)
        self.position_encoding = PositionEncoding2D(embed_dims)
        # An encoder layer is a cross-attention layer of the query's tokens
        # to themselves: LN(x + MHA(x + pos, x + pos, x)), LN(x + FFN(x)).
        self.encoder_layers = nn.ModuleList([
            CrossAttentionLayer(embed_dims, num_heads, feedforward_channels,
                                dropout) for _ in range(num_encoder_layers)
        ])
        self.decoder_layers = nn.ModuleList([
            _DecoderLayer(embed_dims, num_heads, feedforward_channels,
                          dropout) for _ in range(num_decoder_layers)
        ])
        self.output_proj = nn.Conv2d(embed_dims, in_channels, 1)
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        for param in self.parameters():
            if param.dim() > 1:
                nn.init.xavier_uniform_(param)

    def forward(self,
                proposals: Tensor,
                query: Tensor,
                query_inds: Optional[Tensor] = None) -> Tensor:
        """Encode the query and translate the proposals.

        Args:
            proposals (Tensor): ``(N, C, s, s)`` proposal features.
            query (Tensor): ``(B, C, h, w)`` query maps.
            query_inds (Tensor, optional): ``(N,)`` each proposal's row of
                ``query``; ``None`` means ``B == N``, row ``i`` for
                proposal ``i``.

        Returns:
            Tensor: Translated proposals ``(N, C, s, s)``.
        """
        if query_inds is None:
            query_inds = torch.arange(
                proposals.shape[0], device=proposals.device)
        return self.translate(proposals, self.encode_query(query),
                              query_inds)

    def encode_query(self, query: Tensor) -> QueryMemory:
        """The encoder over each episode's query (once per episode).

        Args:
            query (Tensor): ``(B, C, h, w)``.

        Returns:
            QueryMemory: ``tokens`` and ``pos``, ``(B, h*w, D)`` each.
        """
        self._check_channels(query, 'query')
        tokens = flatten_positions(self.query_proj(query))
        pos = flatten_positions(self.position_encoding(query))
        for layer in self.encoder_layers:
            tokens, _ = layer(tokens, tokens, pos, pos)
        return QueryMemory(tokens, pos)

    def translate(self, proposals: Tensor, memory: QueryMemory,
                  query_inds: Tensor) -> Tensor:
        """The decoder over each proposal, reading its episode's memory.

        Args:
            proposals (Tensor): ``(N, C, s, s)``.
            memory (QueryMemory): From :meth:`encode_query`, ``(B, ...)``.
            query_inds (Tensor): ``(N,)`` long, each proposal's episode.

        Returns:
            Tensor: ``(N, C, s, s)``.
        """
        self._check_channels(proposals, 'proposals')
        if query_inds.shape != proposals.shape[:1]:
            raise ValueError(
                f'AdaptiveImageTransformer: query_inds '
                f'{tuple(query_inds.shape)} must give one episode per '
                f'proposal ({proposals.shape[0]}).')
        hw = proposals.shape[-2:]
        tokens = flatten_positions(self.proposal_proj(proposals))  # (N,L,D)
        if tokens.shape[0] == 0:  # an episode batch without proposals
            return self.output_proj(unflatten_positions(tokens, hw))
        pos = flatten_positions(self.position_encoding(proposals))
        episodes = _EpisodeLayout(query_inds, memory.tokens.shape[0])
        for layer in self.decoder_layers:
            attended, _ = layer.self_attention(
                tokens + pos, tokens + pos, tokens, need_weights=False)
            tokens = layer.norm_self_attention(
                tokens + layer.dropout(attended))
            # One sequence per episode: all its proposals' tokens.
            tokens, _ = layer.cross_attention(
                episodes.pack(tokens), memory.tokens, episodes.pack(pos),
                memory.pos)
            tokens = episodes.unpack(tokens)
        return self.output_proj(unflatten_positions(tokens, hw))

    def _check_channels(self, x: Tensor, name: str) -> None:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f'AdaptiveImageTransformer: {name} {tuple(x.shape)} should be '
                f'(n, in_channels={self.in_channels}, h, w); set '
                'transformer.in_channels to the RoI feature width.')


class _EpisodeLayout:
    """Lays the tokens of the proposals of each episode end to end.

    ``pack``: ``(N, L, D)`` (proposal ``i`` of episode ``query_inds[i]``)
    -> ``(B, n_max * L, D)``, zero-padded where an episode has fewer than
    ``n_max`` proposals; ``unpack`` is its inverse (padding dropped).
    """

    def __init__(self, query_inds: Tensor, num_episodes: int) -> None:
        query_inds = query_inds.long()
        if int(query_inds.min()) < 0 or \
                int(query_inds.max()) >= num_episodes:
            raise ValueError(
                f'query_inds in [{int(query_inds.min())}, '
                f'{int(query_inds.max())}] but the memory has '
                f'{num_episodes} episodes.')
        counts = torch.bincount(query_inds, minlength=num_episodes)
        sorted_inds, order = torch.sort(query_inds, stable=True)
        starts = torch.cumsum(counts, 0) - counts
        rank = torch.empty_like(query_inds)
        rank[order] = torch.arange(
            len(query_inds), device=query_inds.device) - starts[sorted_inds]
        self.episode, self.rank = query_inds, rank
        self.num_episodes = num_episodes
        self.max_count = int(counts.max())

    def pack(self, tokens: Tensor) -> Tensor:
        num, length, dims = tokens.shape
        packed = tokens.new_zeros(self.num_episodes, self.max_count, length,
                                  dims)
        packed[self.episode, self.rank] = tokens
        return packed.flatten(1, 2)

    def unpack(self, packed: Tensor) -> Tensor:
        dims = packed.shape[-1]
        packed = packed.view(self.num_episodes, self.max_count, -1, dims)
        return packed[self.episode, self.rank]


__all__ = ['AdaptiveImageTransformer', 'QueryMemory']

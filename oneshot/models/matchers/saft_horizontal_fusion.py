"""SaFT's horizontal fusion module (HFM): the query's points attend to the
whole target pyramid, then the target's points attend to the query."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmcv.cnn import ConvModule
from mmcv.cnn.bricks.transformer import FFN
from mmdet.registry import MODELS
from mmdet.utils import OptConfigType, OptMultiConfig
from torch import Tensor, nn

from ..layers import ProjectedAttention
from .base import BaseMatcher
from .matcher_utils import (PositionEncoding2D, check_levels,
                            flatten_positions, unflatten_positions)


@MODELS.register_module()
class SaFTHorizontalFusion(BaseMatcher):
    """Cross-sample fusion of a query pyramid and a target pyramid.

    SaFT (Zhao et al., "Semantic-aligned Fusion Transformer for One-shot
    Object Detection", CVPR 2022). The paper's point is that comparing a
    target position with a pooled query vector (or with the query at one
    scale) misaligns semantics: the object's parts and its scale in the
    target differ from the patch. So every point of the query's pyramid
    looks at the *whole* (vertically enhanced,
    :class:`~oneshot.models.necks.SaFTVerticalFusion`) target pyramid, and
    the target's points then read the query thus aligned. Per episode:

    1. Tokens. Both pyramids are flattened, all levels concatenated:
       ``T`` ``(N_t, C)`` for the target, ``Q`` ``(N_q, C)`` for the query.
       Attention queries and keys get a 2D sine position (normalised per
       map, :class:`PositionEncoding2D`) plus a learned level embedding;
       values carry content only (the DETR convention).
    2. Query stream: ``Q1 = Q + Drop(Attn(LN(Q), LN(T)))``,
       ``Q1 = Q1 + FFN(LN(Q1))`` — each query point attends to every
       position of every target level.
    3. Target stream: ``A = Attn(LN(T), LN(Q1))``, ``T1 = T + Drop(A)``,
       ``T1 = T1 + FFN(LN(T1))`` — each target point reads the aligned
       query.
    4. Comparison: ``D = |T - A|``. A softmax read-out is a mix of query
       features and says *what* in the query a position resembles, not *how
       much*; ``T`` and ``A`` live in the same residual space (``A`` is
       what is added to ``T``), so ``D`` is small where the target point
       matches what it read — the attention form of the Siamese
       ``|t - GAP(q)|``, which the class-agnostic head needs to tell "looks
       like the query" from "is an object".
    5. Output per level: ``ReLU(conv1x1(cat(T1, D)))`` to
       ``out_channels`` (one conv for all levels).

    Choices where the paper leaves details open (docs/methods.md, "SaFT"):
    one round of exchange (query -> target, then target -> query; one more
    round doubles the cost, the first already relates every pair of
    points); pre-norm layers with ``dropout=0.1``, as in the vertical
    module; the attention width is the FPN's (``in_channels``; no
    down-projection: the target has ~13k tokens at 1000x600 and the query
    ~0.9k, so attention is ~1.1e7 pairs per head, affordable without it);
    the query's K shots are fused before (``query_fusion`` of the detector).

    Work sharing. Query-only work (query tokens, positions, the query
    stream's attention-query projection) runs once per episode row;
    target-only work (target tokens, positions, the keys/values the query
    stream reads, the target stream's attention-query projection) runs once
    per *distinct* target row: rows that are exactly equal on every level
    (N queries searched in one image; the detector has already run the
    backbone once for them) share it. The rest depends on both and runs per
    episode. Results equal running the episodes one by one.

    Args:
        in_channels (int): Channels ``C`` of target and query maps.
        num_levels (int): Pyramid levels ``L`` (size of the level
            embedding; the neck's number of outputs).
        out_channels (int, optional): Channels of the fused maps (the dense
            head's ``in_channels``). Defaults to ``in_channels``.
        num_heads (int): Attention heads. Defaults to 8.
        feedforward_channels (int): FFN hidden width. Defaults to 1024.
        dropout (float): Dropout on attention weights, residuals and FFN.
            Defaults to 0.1.
        act_cfg (dict, optional): Activation after the output conv.
            Defaults to ReLU.
        init_cfg (dict, optional): Initialisation config.

    Shapes:
        ``forward(target_feats, query_feats)``: ``L`` maps ``(B, C, H_l,
        W_l)`` and ``L`` maps ``(B, C, h_l, w_l)`` (one row per episode) ->
        ``L`` maps ``(B, out_channels, H_l, W_l)``.
    """

    def __init__(self,
                 in_channels: int,
                 num_levels: int,
                 out_channels: Optional[int] = None,
                 num_heads: int = 8,
                 feedforward_channels: int = 1024,
                 dropout: float = 0.1,
                 act_cfg: OptConfigType = dict(type='ReLU'),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if in_channels % num_heads:
            raise ValueError(
                f'SaFTHorizontalFusion: in_channels={in_channels} must be '
                f'divisible by num_heads={num_heads}.')
        self.in_channels = in_channels
        self.out_channels = out_channels or in_channels
        self.num_levels = num_levels
        c = in_channels
        self.position_encoding = PositionEncoding2D(c)
        self.level_embed = nn.Parameter(
            torch.empty(num_levels, c).normal_(std=0.02))
        self.dropout = nn.Dropout(dropout)

        def ffn() -> FFN:
            return FFN(embed_dims=c, feedforward_channels=feedforward_channels,
                       num_fcs=2, ffn_drop=dropout, add_identity=True)

        # Query stream: query points attend to the target pyramid.
        self.query_norm = nn.LayerNorm(c)
        self.query_context_norm = nn.LayerNorm(c)  # on the target tokens
        self.query_attention = ProjectedAttention(c, num_heads, dropout)
        self.query_ffn_norm = nn.LayerNorm(c)
        self.query_ffn = ffn()
        # Target stream: target points attend to the aligned query.
        self.target_norm = nn.LayerNorm(c)
        self.target_context_norm = nn.LayerNorm(c)  # on the query tokens
        self.target_attention = ProjectedAttention(c, num_heads, dropout)
        self.target_ffn_norm = nn.LayerNorm(c)
        self.target_ffn = ffn()
        self.output_proj = ConvModule(
            2 * c, self.out_channels, 1, act_cfg=act_cfg)

    # ------------------------------------------------------------------
    def forward(self, target_feats: Sequence[Tensor],
                query_feats: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        """Fuse each episode's query pyramid into its target pyramid.

        Args:
            target_feats (Sequence[Tensor]): Per level ``(B, C, H, W)``.
            query_feats (Sequence[Tensor]): Per level ``(B, C, h, w)``,
                already fused over the K shots.

        Returns:
            tuple[Tensor]: Per level ``(B, out_channels, H, W)``.
        """
        check_levels(self, target_feats, query_feats)
        if len(target_feats) != self.num_levels:
            raise ValueError(
                f'SaFTHorizontalFusion was built with num_levels='
                f'{self.num_levels} but received {len(target_feats)} levels; '
                "set num_levels to the neck's number of outputs.")
        keep, inverse = distinct_rows(target_feats)
        distinct = tuple(target_feats) if keep is None else tuple(
            f[keep] for f in target_feats)
        target = self.encode_target(distinct)
        query = self.encode_query(query_feats)
        if keep is not None:
            target = {k: v[inverse] if torch.is_tensor(v) else v
                      for k, v in target.items()}

        # Query stream: every query point reads the whole target pyramid.
        q = query['tokens']
        attended = self.query_attention.attend(
            query['attn_query'], target['context_keys'],
            target['context_values'])
        q = q + self.dropout(attended)
        q = self.query_ffn(self.query_ffn_norm(q), identity=q)

        # Target stream: every target point reads the aligned query.
        q_normed = self.target_context_norm(q)
        keys = self.target_attention.project(q_normed + query['pos'], 'k')
        values = self.target_attention.project(q_normed, 'v')
        attended = self.target_attention.attend(target['attn_query'], keys,
                                                values)
        t = target['tokens']
        difference = (t - attended).abs()
        t = t + self.dropout(attended)
        t = self.target_ffn(self.target_ffn_norm(t), identity=t)

        fused = torch.cat([t, difference], dim=-1)
        outs: List[Tensor] = []
        start = 0
        for size in target['sizes']:
            n = size[0] * size[1]
            outs.append(self.output_proj(
                unflatten_positions(fused[:, start:start + n], size)))
            start += n
        return tuple(outs)

    def encode_target(self, target_feats: Sequence[Tensor]
                      ) -> Dict[str, object]:
        """Target-only work, once per distinct target row.

        Returns:
            dict: ``tokens`` ``(U, N_t, C)`` (all levels), ``pos``
            (positions + level embeddings), ``context_keys`` /
            ``context_values`` (what the query stream attends to),
            ``attn_query`` (the target stream's projected attention
            queries), all ``(U, N_t, C)``, and ``sizes`` (per-level
            ``(H, W)``).
        """
        tokens, pos = self._tokens(target_feats)
        normed = self.query_context_norm(tokens)
        return dict(
            tokens=tokens,
            pos=pos,
            context_keys=self.query_attention.project(normed + pos, 'k'),
            context_values=self.query_attention.project(normed, 'v'),
            attn_query=self.target_attention.project(
                self.target_norm(tokens) + pos, 'q'),
            sizes=[tuple(f.shape[-2:]) for f in target_feats])

    def encode_query(self, query_feats: Sequence[Tensor]) -> Dict[str, Tensor]:
        """Query-only work, once per episode row.

        Returns:
            dict: ``tokens`` ``(B, N_q, C)`` (all levels), ``pos``
            (positions + level embeddings) and ``attn_query`` (the query
            stream's projected attention queries), all ``(B, N_q, C)``.
        """
        tokens, pos = self._tokens(query_feats)
        return dict(
            tokens=tokens,
            pos=pos,
            attn_query=self.query_attention.project(
                self.query_norm(tokens) + pos, 'q'))

    def _tokens(self, feats: Sequence[Tensor]) -> Tuple[Tensor, Tensor]:
        """All levels as one sequence ``(B, sum H_l W_l, C)`` and its
        positional + level encoding of the same shape."""
        embeds = self.level_embed.to(feats[0].dtype)
        tokens, pos = [], []
        for level, f in enumerate(feats):
            tokens.append(flatten_positions(f))
            pos.append(
                flatten_positions(self.position_encoding(f)) + embeds[level])
        return torch.cat(tokens, dim=1), torch.cat(pos, dim=1)


def distinct_rows(feats: Sequence[Tensor]
                  ) -> Tuple[Optional[List[int]], Optional[Tensor]]:
    """Group the rows of per-level maps that are exactly equal.

    Args:
        feats (Sequence[Tensor]): Per level ``(B, ...)``.

    Returns:
        tuple: ``keep`` (indices of the distinct rows) and ``inverse``
        (LongTensor ``(B,)``: row ``i`` equals distinct row ``inverse[i]``),
        or ``(None, None)`` when every row is distinct.
    """
    batch = feats[0].shape[0]
    if batch == 1:
        return None, None
    device = feats[0].device
    # A cached target expanded to N episodes (OneShotInferencer): one row.
    if all(f.stride(0) == 0 for f in feats):
        return [0], torch.zeros(batch, dtype=torch.long, device=device)
    keep: List[int] = []
    inverse: List[int] = []
    for row in range(batch):
        for slot, kept in enumerate(keep):
            if all(torch.equal(f[kept], f[row]) for f in feats):
                inverse.append(slot)
                break
        else:
            keep.append(row)
            inverse.append(len(keep) - 1)
    if len(keep) == batch:
        return None, None
    return keep, torch.tensor(inverse, dtype=torch.long, device=device)


__all__ = ['SaFTHorizontalFusion', 'distinct_rows']

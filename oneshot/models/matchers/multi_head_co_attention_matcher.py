"""Multi-head co-attention matcher (AIT)."""
from typing import Optional, Sequence, Tuple

from mmcv.cnn import ConvModule
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptMultiConfig
from torch import Tensor, nn

from .base import BaseMatcher, MatcherOutput
from .matcher_utils import check_levels, flatten_positions, unflatten_positions


@MODELS.register_module()
class MultiHeadCoAttentionMatcher(BaseMatcher):
    """Co-attention in both directions with multi-head softmax attention.

    AIT (Chen et al., "Adaptive Image Transformer for One-Shot Object
    Detection", CVPR 2021) keeps CoAE's detector and makes its co-attention
    multi-head. For each level, with target map ``t`` ``(B, C, H, W)`` and
    query map ``q`` ``(B, C, h, w)``:

    1. one 1x1 conv projects both maps to ``embed_dims`` tokens (one
       backbone encodes both images, so one projection keeps them in one
       space, as CoAE's shared ``g``);
    2. the target reads the query and the query reads the target, each
       with its own ``nn.MultiheadAttention`` (``num_heads`` heads,
       softmax over the positions of the other image):
       ``a_t = MHA(t, q, q)``, ``a_q = MHA(q, t, t)``;
    3. each read-out goes back to ``C`` channels through a 1x1 conv + norm
       whose norm starts at zero and is added to its map:
       ``t' = t + W(a_t)``, ``q' = q + Q(a_q)``. As in
       :class:`CoAttentionMatcher` the block is the identity at
       initialisation, so the pre-trained layer3 features reach the RPN and
       layer4 unchanged until the attention has learnt something.

    Returns ``MatcherOutput(rpn=t', roi=t', query=q')``: the RPN and the
    RoI head both see the co-attended target. AIT has no co-excitation in
    the matcher; its per-proposal selective channel attention
    (:class:`~oneshot.models.roi_heads.SelectiveChannelAttention`) takes
    that role in the RoI head.

    Choices where the paper leaves the detail open (docs/methods.md, "AIT"):

    - Heads: PyTorch's ``nn.MultiheadAttention`` (scaled dot product,
      softmax), 8 heads over ``embed_dims = C/2`` (512 for the C4 map: the
      width of CoAE's co-attention and of AIT's transformer).
    - No positional encodings: the object sits anywhere in the target, so
      "where in the query" says nothing about "where in the target"; the
      matcher compares content only, like CoAE's co-attention. (The
      per-proposal transformer, where proposal and query are both object
      crops, does use positions.)
    - Dropout 0.1 on the attention weights (AIT's transformer value).
    - Padded target positions take part in the attention like any other
      position (no padding mask reaches the matcher).

    Args:
        in_channels (int): Channels ``C`` of target and query maps; the
            outputs keep ``C`` channels.
        embed_dims (int, optional): Attention width. Defaults to
            ``in_channels // 2``.
        num_heads (int): Attention heads; must divide ``embed_dims``.
            Defaults to 8.
        dropout (float): Dropout on the attention weights. Defaults to 0.1.
        norm_cfg (dict): Norm of the zero-initialised output convs.
            Defaults to BN.
        init_cfg (dict, optional): Initialisation config.

    Shapes:
        ``forward(target_feats, query_feats)``: per-level tuples of
        ``(B, C, H_l, W_l)`` and ``(B, C, h_l, w_l)`` (one row per
        episode) -> :class:`MatcherOutput` with ``rpn`` (= ``roi``) per
        level ``(B, C, H_l, W_l)`` and ``query`` per level
        ``(B, C, h_l, w_l)``. All levels share the weights.
    """

    # The residual branches start at zero: co-attention starts as the
    # identity (BaseMatcher.zero_init_outputs).
    zero_init_norms = ('target_out', 'query_out')

    def __init__(self,
                 in_channels: int,
                 embed_dims: Optional[int] = None,
                 num_heads: int = 8,
                 dropout: float = 0.1,
                 norm_cfg: ConfigType = dict(type='BN'),
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        embed_dims = embed_dims or in_channels // 2
        if embed_dims < 1 or embed_dims % num_heads:
            raise ValueError(
                f'MultiHeadCoAttentionMatcher: embed_dims={embed_dims} must '
                f'be a positive multiple of num_heads={num_heads}; set '
                'embed_dims (default in_channels // 2) or num_heads.')
        self.in_channels = in_channels
        self.embed_dims = embed_dims
        self.input_proj = nn.Conv2d(in_channels, embed_dims, 1)
        self.target_attention = nn.MultiheadAttention(
            embed_dims, num_heads, dropout=dropout, batch_first=True)
        self.query_attention = nn.MultiheadAttention(
            embed_dims, num_heads, dropout=dropout, batch_first=True)
        self.target_out = ConvModule(
            embed_dims, in_channels, 1, norm_cfg=norm_cfg, act_cfg=None)
        self.query_out = ConvModule(
            embed_dims, in_channels, 1, norm_cfg=norm_cfg, act_cfg=None)
        self.zero_init_outputs()

    def forward(self, target_feats: Sequence[Tensor],
                query_feats: Sequence[Tensor]) -> MatcherOutput:
        """Co-attend every level.

        Args:
            target_feats (Sequence[Tensor]): Per level ``(B, C, H, W)``.
            query_feats (Sequence[Tensor]): Per level ``(B, C, h, w)``,
                already fused over the K shots.

        Returns:
            MatcherOutput: ``rpn`` the co-attended targets (``roi`` the
            same), ``query`` the co-attended queries.
        """
        check_levels(self, target_feats, query_feats)
        targets, queries = [], []
        for t, q in zip(target_feats, query_feats):
            t_co, q_co = self.co_attention(t, q)
            targets.append(t_co)
            queries.append(q_co)
        return MatcherOutput(rpn=tuple(targets), query=tuple(queries))

    def co_attention(self, target: Tensor,
                     query: Tensor) -> Tuple[Tensor, Tensor]:
        """Multi-head co-attention of one level.

        Args:
            target (Tensor): ``(B, C, H, W)``.
            query (Tensor): ``(B, C, h, w)``.

        Returns:
            tuple[Tensor, Tensor]: The target with query context
            ``(B, C, H, W)`` and the query with target context
            ``(B, C, h, w)``.
        """
        t_tokens = flatten_positions(self.input_proj(target))  # (B, Nt, D)
        q_tokens = flatten_positions(self.input_proj(query))  # (B, Nq, D)
        target_context, _ = self.target_attention(
            t_tokens, q_tokens, q_tokens, need_weights=False)
        query_context, _ = self.query_attention(
            q_tokens, t_tokens, t_tokens, need_weights=False)
        target = target + self.target_out(
            unflatten_positions(target_context, target.shape[-2:]))
        query = query + self.query_out(
            unflatten_positions(query_context, query.shape[-2:]))
        return target, query

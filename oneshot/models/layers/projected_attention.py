"""Multi-head attention whose projections can be computed apart.

``nn.MultiheadAttention`` projects its query, key and value inside one
call. When one side of an attention is shared by several episodes (a target
image attended by N queries) or is the same for every output level (the
keys of a feature pyramid), projecting it inside every call repeats work.
:class:`ProjectedAttention` keeps an ``nn.MultiheadAttention`` for its
parameters and initialisation and exposes the three steps separately:
:meth:`project` (``'q'``, ``'k'`` or ``'v'``), :meth:`attend` (heads,
``F.scaled_dot_product_attention``, output projection). Its
:meth:`forward` equals the wrapped module's (tests/test_saft.py checks it).
"""
from torch import Tensor, nn
from torch.nn import functional as F

_SLOTS = {'q': 0, 'k': 1, 'v': 2}


class ProjectedAttention(nn.Module):
    """Multi-head attention with separately callable projections.

    Args:
        embed_dims (int): Token channels ``D``.
        num_heads (int): Heads; must divide ``embed_dims``.
        dropout (float): Dropout on the attention weights (training only),
            as in ``nn.MultiheadAttention``.

    Shapes:
        :meth:`project`: ``(..., N, D) -> (..., N, D)``.
        :meth:`attend`: projected ``q`` ``(..., N, D)``, ``k`` and ``v``
        ``(..., M, D)`` (same leading dimensions) -> ``(..., N, D)``.
    """

    def __init__(self, embed_dims: int, num_heads: int,
                 dropout: float = 0.0) -> None:
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(
                f'embed_dims={embed_dims} must be divisible by '
                f'num_heads={num_heads}.')
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.attn = nn.MultiheadAttention(
            embed_dims, num_heads, dropout=dropout, batch_first=True)

    def project(self, x: Tensor, which: str) -> Tensor:
        """The ``'q'``, ``'k'`` or ``'v'`` input projection of ``x``."""
        slot = _SLOTS[which]
        d = self.embed_dims
        weight = self.attn.in_proj_weight[slot * d:(slot + 1) * d]
        bias = self.attn.in_proj_bias[slot * d:(slot + 1) * d]
        return F.linear(x, weight, bias)

    def attend(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """Scaled dot-product attention of projected tokens, per head,
        followed by the output projection."""
        heads = self.num_heads

        def split(x: Tensor) -> Tensor:  # (..., N, D) -> (..., H, N, D/H)
            return x.unflatten(-1, (heads, -1)).transpose(-3, -2)

        dropout = self.attn.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(
            split(q), split(k), split(v), dropout_p=dropout)
        return self.attn.out_proj(out.transpose(-3, -2).flatten(-2))

    def forward(self, query: Tensor, key: Tensor, value: Tensor) -> Tensor:
        """``nn.MultiheadAttention(query, key, value)[0]`` (batch first)."""
        return self.attend(self.project(query, 'q'), self.project(key, 'k'),
                           self.project(value, 'v'))


__all__ = ['ProjectedAttention']

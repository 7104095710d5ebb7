"""Selective channel attention of AIT: proposal or its translation, per
channel."""
from mmdet.registry import MODELS
from mmdet.utils import OptMultiConfig
from mmengine.model import BaseModule
from torch import Tensor, nn


@MODELS.register_module()
class SelectiveChannelAttention(BaseModule):
    """Choose, channel by channel, between a proposal and its translation.

    AIT (Chen et al., CVPR 2021) scores each proposal against the query
    after a *selective channel attention*. The paper's exact form is not
    among the facts this project works from; this module is a
    selective-kernel selection (SKNet: fuse, squeeze, select with a softmax
    over the branches) between the two versions of a proposal the AIT head
    has, made aware of the query:

    1. **fuse**: ``u = GAP(p + t)`` ``(N, C)``, ``p`` the RoI feature and
       ``t`` its translation (:class:`AdaptiveImageTransformer`), both
       ``(N, C, s, s)``;
    2. **squeeze** with the query:
       ``z = ReLU(W_p u + W_q GAP(q))`` ``(N, C / reduction)``. ``W_q
       GAP(q)`` depends on the episode only and is computed once per
       episode (:meth:`encode_query`), then gathered for its proposals;
    3. **select**: ``[a_p, a_t] = softmax(W_s z)`` over the two branches,
       one pair per channel (``a_p + a_t = 1``), and
       ``out = a_p * p + a_t * t``.

    Why this form: the query decides which channels matter for its class
    (CoAE's co-excitation, which AIT's matcher no longer has, re-weights
    channels by the query too), and per proposal and per channel the head
    can keep the appearance it pooled or take what the transformer
    translated. The output is a convex mix of two maps of the proposal's
    grid and scale, so the shared head (layer4) sees inputs of the range it
    was pre-trained on. There is no normalisation layer in the squeeze
    (SKNet has BN): batch statistics would mix proposals of different
    episodes.

    Args:
        channels (int): Channels ``C`` of proposal, translation and query.
        reduction (int): Squeeze ratio. Defaults to 16 (as CoAE's
            co-excitation).
        init_cfg (dict, optional): Initialisation config.

    Shapes:
        ``encode_query(query)``: ``(B, C, h, w)`` -> ``(B, C / reduction)``.
        ``forward(proposals, translations, query_code, query_inds)``:
        ``(N, C, s, s)``, ``(N, C, s, s)``, ``(B, C / reduction)``,
        ``(N,)`` -> ``(N, C, s, s)``.
    """

    def __init__(self,
                 channels: int,
                 reduction: int = 16,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if reduction < 1 or channels // reduction < 1:
            raise ValueError(
                f'SelectiveChannelAttention: reduction={reduction} must be '
                f'>= 1 and at most channels={channels}.')
        self.channels = channels
        hidden = channels // reduction
        self.squeeze_proposal = nn.Linear(channels, hidden)
        self.squeeze_query = nn.Linear(channels, hidden, bias=False)
        self.select = nn.Linear(hidden, 2 * channels)

    def encode_query(self, query: Tensor) -> Tensor:
        """``W_q GAP(q)``: the query's part of the squeeze, once per
        episode.

        Args:
            query (Tensor): ``(B, C, h, w)``.

        Returns:
            Tensor: ``(B, C / reduction)``.
        """
        self._check(query, 'query')
        return self.squeeze_query(query.mean(dim=(2, 3)))

    def forward(self, proposals: Tensor, translations: Tensor,
                query_code: Tensor, query_inds: Tensor) -> Tensor:
        """Mix each proposal with its translation, channel by channel.

        Args:
            proposals (Tensor): RoI features ``(N, C, s, s)``.
            translations (Tensor): Their translations ``(N, C, s, s)``.
            query_code (Tensor): :meth:`encode_query` output
                ``(B, C / reduction)``.
            query_inds (Tensor): ``(N,)`` long, each proposal's episode.

        Returns:
            Tensor: ``a_p * proposals + a_t * translations``,
            ``(N, C, s, s)``.
        """
        self._check(proposals, 'proposals')
        if translations.shape != proposals.shape:
            raise ValueError(
                f'SelectiveChannelAttention: translations '
                f'{tuple(translations.shape)} must have the shape of '
                f'proposals {tuple(proposals.shape)}.')
        fused = (proposals + translations).mean(dim=(2, 3))
        squeezed = (self.squeeze_proposal(fused) +
                    query_code[query_inds]).relu()
        weights = self.select(squeezed).view(-1, 2, self.channels)
        weights = weights.softmax(dim=1)[..., None, None]
        return weights[:, 0] * proposals + weights[:, 1] * translations

    def _check(self, x: Tensor, name: str) -> None:
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(
                f'SelectiveChannelAttention: {name} {tuple(x.shape)} should '
                f'be (n, channels={self.channels}, h, w); set '
                'channel_attention.channels to the RoI feature width.')

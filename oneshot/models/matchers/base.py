"""The matcher interface: what a matcher receives and what it returns.

A matcher conditions the target feature maps on the episode's query. The
Siamese detectors (``oneshot.models.detectors``) call it once per batch,
after one backbone (+ neck) pass over the targets and one over the K-fused
queries, and hand its output to the heads.
"""
from typing import NamedTuple, Optional, Sequence, Tuple, Union

from mmengine.model import BaseModule
from torch import Tensor, nn


class MatcherOutput(NamedTuple):
    """What a matcher may return instead of plain per-level tensors.

    Attributes:
        rpn (tuple[Tensor]): Per level ``(B, C', H, W)``: the maps the
            proposal stage (RPN, or the dense head of a single-stage
            detector) sees.
        roi (tuple[Tensor], optional): Maps the RoI head sees; ``None``
            means the same as ``rpn``.
        query (tuple[Tensor], optional): Query features handed to
            query-aware RoI heads; ``None`` means the backbone's query
            features unchanged.
    """
    rpn: Tuple[Tensor, ...]
    roi: Optional[Tuple[Tensor, ...]] = None
    query: Optional[Tuple[Tensor, ...]] = None


MatcherResult = Union[Sequence[Tensor], MatcherOutput]


class BaseMatcher(BaseModule):
    """Base class of the matchers (:class:`L1DiffMatcher`,
    :class:`CrossAttentionMatcher`, :class:`CoAttentionMatcher`).

    Contract (what the detectors rely on):

    - ``forward(target_feats, query_feats)``: ``target_feats`` per level
      ``(B, C, H_l, W_l)`` and ``query_feats`` per level ``(B, C, h_l,
      w_l)``, one row per episode (row ``i`` of both belongs to episode
      ``i``; the K shots are already fused), ``C == self.in_channels``.
      :func:`~.matcher_utils.check_levels` validates exactly this.
    - It returns either a tuple of per-level ``(B, C', H_l, W_l)`` maps,
      which both the proposal stage and the RoI head see, or a
      :class:`MatcherOutput` when the two stages see different maps or
      the matcher re-encodes the query for a query-aware RoI head (CoAE).
      :func:`as_matcher_output` turns either into a complete
      :class:`MatcherOutput`.
    - ``C'`` (``out_channels`` where the matcher has one) is what the heads
      after it must take as input channels.

    Subclasses set ``self.in_channels`` and implement :meth:`forward`; a
    matcher is registered in mmdet's ``MODELS`` and named in a config as
    ``model.matcher``.

    A matcher that should start as the identity (its output added to its
    input, as the co-attention matchers do) names the ``ConvModule`` s whose
    norm ends the residual branch in ``zero_init_norms`` and calls
    :meth:`zero_init_outputs` at the end of ``__init__``; the norms are
    zeroed again after :meth:`init_weights` (``ConvModule.init_weights``
    resets norm scales to 1).
    """

    in_channels: int
    zero_init_norms: Tuple[str, ...] = ()

    def zero_init_outputs(self) -> None:
        """Zero the norms named in ``zero_init_norms``."""
        for name in self.zero_init_norms:
            norm = getattr(self, name).norm
            nn.init.zeros_(norm.weight)
            nn.init.zeros_(norm.bias)

    def init_weights(self) -> None:
        """Initialise, then re-zero the ``zero_init_norms``."""
        super().init_weights()
        self.zero_init_outputs()

    def forward(self, target_feats: Sequence[Tensor],
                query_feats: Sequence[Tensor]) -> MatcherResult:
        """Condition every target level on the episode's query.

        Args:
            target_feats (Sequence[Tensor]): Per level ``(B, C, H, W)``.
            query_feats (Sequence[Tensor]): Per level ``(B, C, h, w)``.

        Returns:
            tuple[Tensor] | MatcherOutput: Per level ``(B, C', H, W)``, or
            a :class:`MatcherOutput`.
        """
        raise NotImplementedError(
            f'{type(self).__name__} must implement forward(target_feats, '
            'query_feats).')


def as_matcher_output(out: MatcherResult,
                      query_feats: Sequence[Tensor]) -> MatcherOutput:
    """A matcher's return value with every field filled in.

    Args:
        out (tuple[Tensor] | MatcherOutput): What the matcher returned.
        query_feats (Sequence[Tensor]): The query features the matcher
            received (per level ``(B, C, h, w)``), used where the matcher
            leaves the query unchanged.

    Returns:
        MatcherOutput: ``rpn``, ``roi`` (``rpn`` unless given) and
        ``query`` (``query_feats`` unless given), all tuples.
    """
    if isinstance(out, MatcherOutput):
        rpn = tuple(out.rpn)
        roi = rpn if out.roi is None else tuple(out.roi)
        query = tuple(query_feats) if out.query is None else tuple(out.query)
        return MatcherOutput(rpn, roi, query)
    rpn = tuple(out)
    return MatcherOutput(rpn, rpn, tuple(query_feats))


__all__ = ['BaseMatcher', 'MatcherOutput', 'MatcherResult',
           'as_matcher_output']

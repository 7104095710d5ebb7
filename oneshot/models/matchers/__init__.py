from .base import BaseMatcher, MatcherOutput, as_matcher_output
from .co_attention_matcher import CoAttentionMatcher
from .cross_attention_matcher import CrossAttentionMatcher
from .l1_diff_matcher import L1DiffMatcher
from .multi_head_co_attention_matcher import MultiHeadCoAttentionMatcher
from .saft_horizontal_fusion import SaFTHorizontalFusion
from .matcher_utils import (CrossAttentionLayer, PositionEncoding2D,
                            check_levels, flatten_positions,
                            unflatten_positions)

__all__ = [
    'BaseMatcher', 'MatcherOutput', 'as_matcher_output', 'L1DiffMatcher',
    'CrossAttentionMatcher', 'CoAttentionMatcher',
    'MultiHeadCoAttentionMatcher', 'SaFTHorizontalFusion',
    'CrossAttentionLayer', 'PositionEncoding2D', 'check_levels',
    'flatten_positions', 'unflatten_positions'
]

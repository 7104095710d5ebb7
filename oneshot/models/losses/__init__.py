from .margin_ranking_loss import MarginRankingLoss
from .query_alignment_loss import QueryAlignmentLoss
from .ratio_preserving_loss import RatioPreservingLoss

__all__ = ['MarginRankingLoss', 'QueryAlignmentLoss', 'RatioPreservingLoss']

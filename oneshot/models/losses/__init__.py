from .margin_ranking_loss import MarginRankingLoss
from .ratio_preserving_loss import RatioPreservingLoss

__all__ = ['MarginRankingLoss', 'RatioPreservingLoss']

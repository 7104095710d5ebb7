
from .ratio_preserving_loss import RatioPreservingLoss  # noqa: F401
from .margin_ranking_loss import MarginRankingLoss  # noqa: F401


from .ratio_preserving_loss import RatioPreservingLoss  # noqa: F401

from .loops import OneShotTestLoop, summarize_runs
from .oneshot_metric import OneShotMetric

__all__ = ['OneShotMetric', 'OneShotTestLoop', 'summarize_runs']

from .loops import OneShotTestLoop, summarize_runs
from .oneshot_metric import OneShotMetric, episode_record, summary_line

__all__ = ['OneShotMetric', 'OneShotTestLoop', 'episode_record',
           'summarize_runs', 'summary_line']

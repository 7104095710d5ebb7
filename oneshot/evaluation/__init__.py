from .dump_results import DumpOneShotResults, run_file_path
from .error_analysis import ErrorAnalysisRecorder, analyze_errors
from .loops import OneShotTestLoop, summarize_runs
from .oneshot_metric import (OneShotMetric, episode_order, episode_record,
                             summary_line)

__all__ = ['ErrorAnalysisRecorder', 'OneShotMetric', 'OneShotTestLoop',
           'analyze_errors', 'episode_order', 'episode_record',
           'summarize_runs',
           'summary_line', 'DumpOneShotResults', 'run_file_path']

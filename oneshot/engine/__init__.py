from .hooks import NonFiniteLossError, NonFiniteLossHook
from .runner import OneShotRunner, build_runner, resume_candidates

__all__ = [
    'OneShotRunner', 'build_runner', 'resume_candidates', 'NonFiniteLossHook',
    'NonFiniteLossError'
]

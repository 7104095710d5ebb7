"""A hook that ends its own training process with SIGKILL after a given
iteration: a real, unannounced kill (no exception, no cleanup, no final
checkpoint), as a pre-empted cluster job dies. Imported by the configs of
tests/test_resume.py through ``custom_imports``."""
import os
import signal

from mmdet.registry import HOOKS
from mmengine.hooks import Hook


@HOOKS.register_module()
class KillAfterIterationHook(Hook):
    """``os.kill(os.getpid(), SIGKILL)`` once iteration ``iteration``
    (1-based, as logged) has finished and been logged.

    Args:
        iteration (int): The last iteration the process completes.
    """

    priority = 'LOWEST'

    def __init__(self, iteration: int) -> None:
        self.iteration = iteration

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        if runner.iter + 1 == self.iteration:
            os.kill(os.getpid(), signal.SIGKILL)

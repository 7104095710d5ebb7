from .checkpoint import (CheckpointError, CheckpointMismatchError,
                         UntrustedCheckpointError, load_checkpoint_file,
                         load_model_weights, load_state_dict_strictly)
from .dist import CPUCompatibleDistributedDataParallel, setup_cpu_distributed
from .resume import ResumeStateHook
from .rng import get_rng_state, seeded_global_rng, set_rng_state
from .tools import resolve_work_dir

__all__ = [
    'CheckpointError', 'CheckpointMismatchError', 'UntrustedCheckpointError',
    'load_checkpoint_file', 'load_model_weights', 'load_state_dict_strictly',
    'resolve_work_dir', 'CPUCompatibleDistributedDataParallel',
    'setup_cpu_distributed', 'ResumeStateHook', 'get_rng_state',
    'set_rng_state', 'seeded_global_rng'
]

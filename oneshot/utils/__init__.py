from .checkpoint import load_local_checkpoint, register_trusted_local_loader
from .dist import CPUCompatibleDistributedDataParallel, setup_cpu_distributed
from .tools import resolve_work_dir

# Registered on import so that `custom_imports=['oneshot']` is enough for
# --resume and load_from to work on torch >= 2.6 (see checkpoint.py).
register_trusted_local_loader()

__all__ = [
    'load_local_checkpoint', 'register_trusted_local_loader',
    'resolve_work_dir', 'CPUCompatibleDistributedDataParallel',
    'setup_cpu_distributed'
]

from .formatting import ONESHOT_META_KEYS, PackOneShotInputs
from .query import LoadQueryPatches, ResizeQueryPatches

__all__ = [
    'LoadQueryPatches', 'ResizeQueryPatches', 'PackOneShotInputs',
    'ONESHOT_META_KEYS'
]

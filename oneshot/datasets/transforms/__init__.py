from .formatting import ONESHOT_META_KEYS, PackOneShotInputs
from .query import (ImageSizeMismatchError, LoadQueryPatches,
                    ResizeQueryPatches, check_image_size)

__all__ = [
    'LoadQueryPatches', 'ResizeQueryPatches', 'PackOneShotInputs',
    'ONESHOT_META_KEYS', 'ImageSizeMismatchError', 'check_image_size'
]

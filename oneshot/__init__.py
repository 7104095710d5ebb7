"""oneshot: one-shot object detection as MMDetection 3.x plugins.

Importing the package registers every dataset, transform, model, metric and
loop into mmdet's registries, so configs only need::

    custom_imports = dict(imports=['oneshot'], allow_failed_imports=False)
"""
from .version import __version__
from . import utils  # noqa: F401
from . import datasets  # noqa: F401
from . import engine  # noqa: F401  (OneShotRunner: safe, strict loading)
from . import evaluation  # noqa: F401
from . import models  # noqa: F401
from . import visualization  # noqa: F401

__all__ = ['__version__']

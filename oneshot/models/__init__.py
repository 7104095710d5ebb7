from . import data_preprocessors  # noqa: F401
from . import detectors  # noqa: F401
from . import matchers  # noqa: F401

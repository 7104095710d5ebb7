from . import data_preprocessors  # noqa: F401
from . import dense_heads  # noqa: F401
from . import detectors  # noqa: F401
from . import layers  # noqa: F401
from . import losses  # noqa: F401
from . import matchers  # noqa: F401
from . import necks  # noqa: F401
from . import roi_heads  # noqa: F401

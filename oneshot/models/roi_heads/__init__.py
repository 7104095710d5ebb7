
from .bhrl_bbox_head import BHRLBBoxHead, InstanceHierarchicalRelation  # noqa: F401
from .bhrl_roi_head import BHRLRoIHead  # noqa: F401
from .sarm_roi_head import SARMBBoxHead, SARMRoIHead  # noqa: F401
from .coae_bbox_head import CoAEBBoxHead  # noqa: F401
from .coae_roi_head import CoAERoIHead  # noqa: F401


from .bhrl_bbox_head import BHRLBBoxHead, InstanceHierarchicalRelation  # noqa: F401
from .bhrl_roi_head import BHRLRoIHead  # noqa: F401

from .adaptive_image_transformer import AdaptiveImageTransformer
from .ait_roi_head import AITRoIHead
from .bhrl_bbox_head import BHRLBBoxHead, InstanceHierarchicalRelation
from .bhrl_roi_head import BHRLRoIHead
from .coae_bbox_head import CoAEBBoxHead
from .coae_roi_head import CoAERoIHead
from .query_aware_roi_head import QueryAwareRoIHead
from .sarm_bbox_head import SARMBBoxHead
from .sarm_roi_head import SARMRoIHead
from .selective_channel_attention import SelectiveChannelAttention

__all__ = [
    'QueryAwareRoIHead', 'BHRLBBoxHead', 'InstanceHierarchicalRelation',
    'BHRLRoIHead', 'CoAEBBoxHead', 'CoAERoIHead', 'SARMBBoxHead',
    'SARMRoIHead', 'AdaptiveImageTransformer', 'AITRoIHead',
    'SelectiveChannelAttention'
]

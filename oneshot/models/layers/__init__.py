from .projected_attention import ProjectedAttention

__all__ = ['ProjectedAttention']

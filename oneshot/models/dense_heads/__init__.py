from .matching_fcos_head import MatchingFCOSHead

__all__ = ['MatchingFCOSHead']

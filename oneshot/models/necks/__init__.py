from .saft_vertical_fusion import SaFTVerticalFusion

__all__ = ['SaFTVerticalFusion']

from .oneshot_data_preprocessor import OneShotDataPreprocessor

__all__ = ['OneShotDataPreprocessor']

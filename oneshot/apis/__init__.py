from .inferencer import (EncodedQueries, OneShotInferencer, Query, QuerySet,
                         list_images)

__all__ = [
    'OneShotInferencer', 'Query', 'QuerySet', 'EncodedQueries', 'list_images'
]

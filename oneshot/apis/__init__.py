from .batching import (pair_batches, pair_detections, pair_samples,
                       stack_patches)
from .images import (IMG_EXTENSIONS, describe, list_images, read_image,
                     resolve_targets)
from .inferencer import OneShotInferencer
from .pipeline import InferencePipeline, build_inference_pipeline
from .queries import EncodedQueries, Query, QuerySet, as_query, \
    make_query_sets
from .verification import clip_box, pooled_embedding, read_verify_thr

__all__ = [
    'OneShotInferencer', 'Query', 'QuerySet', 'EncodedQueries',
    'make_query_sets', 'as_query', 'read_image', 'list_images',
    'resolve_targets', 'describe', 'IMG_EXTENSIONS', 'InferencePipeline',
    'build_inference_pipeline', 'stack_patches', 'pair_batches',
    'pair_samples', 'pair_detections', 'pooled_embedding', 'clip_box',
    'read_verify_thr'
]

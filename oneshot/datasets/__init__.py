from . import transforms  # noqa: F401
from .glyphs import generate_glyph_dataset, glyph_classes, glyph_split
from .oneshot_coco import OneShotCocoDataset
from .samplers import (EpisodeAspectRatioBatchSampler, EpisodeSampler,
                       ImageGroupedSampler, InfiniteEpisodeSampler,
                       SameImageBatchSampler)
from .splits import (COCO_CLASSES, VOC_CLASSES, VOC_UNSEEN,
                     coco_split_classes, resolve_split)

__all__ = [
    'OneShotCocoDataset', 'EpisodeSampler', 'InfiniteEpisodeSampler',
    'ImageGroupedSampler', 'SameImageBatchSampler',
    'EpisodeAspectRatioBatchSampler', 'COCO_CLASSES',
    'VOC_CLASSES', 'VOC_UNSEEN', 'coco_split_classes', 'resolve_split',
    'generate_glyph_dataset', 'glyph_classes', 'glyph_split'
]

from .siamese_base import EpisodeFeats, SiameseEpisodeMixin
from .siamese_two_stage import SiameseTwoStageDetector
from .siamese_single_stage import SiameseSingleStageDetector

__all__ = [
    'SiameseTwoStageDetector', 'SiameseSingleStageDetector',
    'SiameseEpisodeMixin', 'EpisodeFeats'
]

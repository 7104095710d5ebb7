from .siamese_base import EpisodeFeats, MatcherOutput, SiameseEpisodeMixin
from .siamese_two_stage import SiameseTwoStageDetector

__all__ = [
    'SiameseTwoStageDetector', 'SiameseEpisodeMixin', 'EpisodeFeats',
    'MatcherOutput'
]

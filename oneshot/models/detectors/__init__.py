from .siamese_base import EpisodeFeats, MatcherOutput, SiameseEpisodeMixin
from .siamese_two_stage import SiameseTwoStageDetector
from .siamese_single_stage import SiameseSingleStageDetector  # noqa: F401

__all__ = [
    'SiameseTwoStageDetector', 'SiameseEpisodeMixin', 'EpisodeFeats',
    'MatcherOutput'
]

from .siamese_two_stage import EpisodeFeats, SiameseTwoStageDetector

__all__ = ['SiameseTwoStageDetector', 'EpisodeFeats']

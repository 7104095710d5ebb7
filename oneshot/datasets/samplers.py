"""Samplers for one-shot episodes.

Training: :class:`EpisodeSampler` / :class:`InfiniteEpisodeSampler` yield
``(idx, draw_seed)`` so that the episode drawn for an image (its class and
its queries) is a deterministic function of (seed, epoch, idx), also with
several dataloader workers and several ranks, without touching any global
RNG.

Testing: :class:`ImageGroupedSampler` + :class:`SameImageBatchSampler` put
the episodes of one target image into the same batch, so the detector runs
the backbone once per image for all of its queries.
"""
from typing import Iterator, List, Optional, Sized, Tuple

from mmdet.registry import DATA_SAMPLERS
from mmengine.dataset import DefaultSampler, InfiniteSampler
from mmengine.dist import get_dist_info
from torch.utils.data import BatchSampler, Sampler


def episode_seed(seed: int, epoch: int, idx: int) -> str:
    """The draw seed of image ``idx`` in ``epoch`` (a string: Python seeds
    ``random.Random`` from a string with SHA-512, the same in every process,
    unlike ``hash()``)."""
    return f'{seed}:{epoch}:{idx}'


@DATA_SAMPLERS.register_module()
class EpisodeSampler(DefaultSampler):
    """``DefaultSampler`` that yields ``(idx, draw_seed)`` pairs.

    Same order, padding and rank split as mmengine's ``DefaultSampler``;
    ``set_epoch`` (called by the epoch-based train loop) changes the draws.
    """

    def __iter__(self) -> Iterator[Tuple[int, str]]:
        for idx in super().__iter__():
            yield idx, episode_seed(self.seed, self.epoch, idx)


@DATA_SAMPLERS.register_module()
class InfiniteEpisodeSampler(InfiniteSampler):
    """``InfiniteSampler`` that yields ``(idx, draw_seed)`` pairs; the pass
    number over the dataset plays the role of the epoch."""

    def _infinite_indices(self) -> Iterator[Tuple[int, str]]:
        for position, idx in enumerate(super()._infinite_indices()):
            yield idx, episode_seed(self.seed, position // self.size, idx)


def _img_id(dataset, idx: int) -> int:
    getter = getattr(dataset, 'get_img_id', None)
    return getter(idx) if getter else dataset.get_data_info(idx)['img_id']


@DATA_SAMPLERS.register_module()
class ImageGroupedSampler(Sampler):
    """Sequential test sampler giving each rank whole images.

    The episodes of one target image are consecutive in a test
    ``OneShotCocoDataset``. mmengine's ``DefaultSampler`` deals indices out
    round-robin (``rank::world_size``), which would send the episodes of one
    image to different ranks. Here every rank gets a contiguous block of
    whole images, about the same number of episodes each, and **no padding**:
    mmengine's ``collect_results`` joins the parts with ``zip_longest`` and
    keeps the first ``len(dataset)`` results, so uneven parts are collected
    completely, while padding duplicates would push real results past that
    cut.

    Args:
        dataset (Sized): The test dataset (``get_img_id(idx)`` or
            ``get_data_info(idx)['img_id']`` gives each item's image).
        seed: Unused (accepted because the Runner passes it).
    """

    def __init__(self, dataset: Sized, seed: Optional[int] = None) -> None:
        self.dataset = dataset
        self.rank, self.world_size = get_dist_info()
        self.indices = self._rank_indices()

    def _rank_indices(self) -> List[int]:
        n = len(self.dataset)
        if self.world_size == 1:
            return list(range(n))
        # Boundaries between images.
        starts = [i for i in range(n) if i == 0 or _img_id(
            self.dataset, i) != _img_id(self.dataset, i - 1)]
        starts.append(n)
        target = n * self.rank / self.world_size
        target_end = n * (self.rank + 1) / self.world_size
        # Each rank takes the images whose first episode falls in its share.
        begin = next((s for s in starts if s >= target), n)
        end = next((s for s in starts if s >= target_end), n)
        if self.rank == self.world_size - 1:
            end = n
        return list(range(begin, end))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)

    def set_epoch(self, epoch: int) -> None:
        """No shuffling, nothing to do."""


@DATA_SAMPLERS.register_module()
class SameImageBatchSampler(BatchSampler):
    """Batches of consecutive indices of the same target image, at most
    ``batch_size`` long; a batch never mixes two images, so padding never
    changes an image's features and the backbone runs once per batch.

    Args:
        sampler (Sampler): Yields indices (normally
            :class:`ImageGroupedSampler`).
        batch_size (int): Most episodes per batch.
        drop_last (bool): Must be False (every episode is evaluated).
    """

    def __init__(self, sampler: Sampler, batch_size: int,
                 drop_last: bool = False) -> None:
        if drop_last:
            raise ValueError('SameImageBatchSampler evaluates every episode; '
                             'drop_last must be False.')
        if batch_size < 1:
            raise ValueError(f'batch_size must be >= 1, got {batch_size}')
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = False
        self._num_batches: Optional[int] = None

    def __iter__(self) -> Iterator[List[int]]:
        dataset = self.sampler.dataset
        batch: List[int] = []
        batch_img = None
        for idx in self.sampler:
            img = _img_id(dataset, idx)
            if batch and (img != batch_img or len(batch) == self.batch_size):
                yield batch
                batch = []
            batch.append(idx)
            batch_img = img
        if batch:
            yield batch

    def __len__(self) -> int:
        if self._num_batches is None:
            self._num_batches = sum(1 for _ in self.__iter__())
        return self._num_batches


__all__ = [
    'EpisodeSampler', 'InfiniteEpisodeSampler', 'ImageGroupedSampler',
    'SameImageBatchSampler', 'episode_seed'
]

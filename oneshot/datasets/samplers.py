"""Samplers for one-shot episodes, and the index contract they share with
:class:`~oneshot.datasets.OneShotCocoDataset` (docs/data_flow.md,
"Episode sampling").

- **What an index is.** Training: ``(idx, draw_seed)``, ``idx`` the position
  of a target image, as :class:`EpisodeSampler` /
  :class:`InfiniteEpisodeSampler` yield it (a plain ``idx`` means
  ``draw_seed = f'{dataset.seed}:{idx}'``: the same episode every epoch).
  Testing: a plain ``idx``, the position of an episode (one per image and
  episode class, then the image's negatives; an image's episodes are
  consecutive).
- **Who draws.** A sampler picks the image and the draw seed
  (:func:`episode_seed`: a function of (seed, epoch, idx)), nothing else.
  The dataset draws the episode (class, K queries) from
  ``random.Random(draw_seed)`` when the item is read, in whichever
  dataloader worker reads it, and runs the training pipeline under global
  generators seeded from the same seed. No sampler touches a global RNG.
- **What reading costs.** ``dataset.get_data_info(i)`` returns the complete
  episode: in training it *draws* one (the class, K queries, a copy of the
  image's annotations); in testing it rebuilds run ``dataset.run``'s
  queries (a seeded permutation prefix of length about ``(run + 1) * K``).
  A sampler that needs only the target image calls the cheap readers,
  which never draw: ``get_img_id(i)`` and ``get_img_size(i)`` (one stored
  entry each; :func:`_img_id` and :func:`_img_size` fall back to
  ``get_data_info`` for other datasets).
- **Aspect-ratio batching.** mmdet's ``AspectRatioBatchSampler`` calls
  ``get_data_info`` on every index to read a width and height, i.e. it
  draws (and throws away) a whole training episode per index, in the main
  process. :class:`EpisodeAspectRatioBatchSampler` forms the same batches
  from ``get_img_size``; the COCO / VOC configs use it.

Training draws are therefore a deterministic function of (seed, epoch, idx)
with any number of dataloader workers and ranks. Testing:
:class:`ImageGroupedSampler` + :class:`SameImageBatchSampler` put the
episodes of one target image into the same batch, so the detector runs the
backbone once per image for all of its queries.
"""
from typing import Iterator, List, Optional, Sized, Tuple

from mmdet.datasets.samplers import AspectRatioBatchSampler
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


def _img_id(dataset, idx) -> int:
    """Target image id of item ``idx``, without drawing an episode when the
    dataset has ``get_img_id``."""
    getter = getattr(dataset, 'get_img_id', None)
    return getter(idx) if getter else dataset.get_data_info(idx)['img_id']


def _img_size(dataset, idx) -> Tuple[int, int]:
    """``(width, height)`` of item ``idx``'s target image, without drawing
    an episode when the dataset has ``get_img_size``."""
    getter = getattr(dataset, 'get_img_size', None)
    if getter:
        return getter(idx)
    info = dataset.get_data_info(idx)
    return info['width'], info['height']


@DATA_SAMPLERS.register_module()
class EpisodeAspectRatioBatchSampler(AspectRatioBatchSampler):
    """mmdet's ``AspectRatioBatchSampler`` that reads sizes, not episodes.

    Batches hold targets of one orientation (``width < height`` or not), as
    in mmdet; the target's size comes from ``dataset.get_img_size(idx)``
    instead of ``get_data_info(idx)``, which on a training one-shot
    dataset would draw a whole episode to read two numbers (see the module
    docstring). Indices pass through unchanged (``(idx, draw_seed)``
    pairs from :class:`EpisodeSampler`). The batches equal mmdet's for
    ``drop_last=False`` (what the configs use); with ``drop_last=True`` a
    last left-over batch of exactly ``batch_size`` is kept (mmdet drops
    it although its ``__len__`` counts it).

    Args:
        sampler (Sampler): Yields the indices (an :class:`EpisodeSampler`).
        batch_size (int): Indices per batch.
        drop_last (bool): Drop a last incomplete batch. Defaults to False.
    """

    def __iter__(self) -> Iterator[list]:
        dataset = self.sampler.dataset
        buckets: Tuple[list, list] = ([], [])
        for idx in self.sampler:
            width, height = _img_size(dataset, idx)
            bucket = buckets[0 if width < height else 1]
            bucket.append(idx)
            if len(bucket) == self.batch_size:
                yield bucket[:]
                del bucket[:]
        left = buckets[0] + buckets[1]
        for start in range(0, len(left), self.batch_size):
            batch = left[start:start + self.batch_size]
            if len(batch) == self.batch_size or not self.drop_last:
                yield batch


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
    'SameImageBatchSampler', 'EpisodeAspectRatioBatchSampler', 'episode_seed'
]

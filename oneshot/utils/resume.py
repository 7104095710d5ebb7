"""Resume a killed training run so that it goes on exactly as the
uninterrupted run would have.

mmengine 0.10.7 checkpoints hold the weights, the optimizer, the parameter
schedulers, the message hub and the iteration/epoch counters, but none of
the random number generators; on ``--resume`` it reseeds them from
``randomness.seed``, so every iteration after the resume draws other RoI
samples and augmentations than the uninterrupted run. :class:`ResumeStateHook`
(in every config through ``configs/_base_/default_runtime.py``) adds what
is missing:

- **Generators.** The Python, numpy, torch CPU and CUDA generator states of
  every rank (:func:`oneshot.utils.rng.get_rng_state`: tensors, ints and
  floats only) are stored under ``checkpoint['resume_state']`` and put back
  right before the first training batch after the resume.
- **Data order.** The episode samplers draw every episode from
  ``(seed, epoch, idx)`` (``oneshot/datasets/samplers.py``) and the training
  pipeline runs with the generators seeded from the episode's draw seed
  (:func:`oneshot.utils.rng.seeded_global_rng`), so the data do not depend
  on the generators' history nor on which dataloader worker loads them.
  The sampler's position is restored by mmengine: an epoch-based loop
  resumes at the start of the saved epoch (``DistSamplerSeedHook`` sets the
  sampler's epoch), an iteration-based loop advances its dataloader by the
  saved number of iterations (``IterBasedTrainLoop.run``: it loads and
  drops those batches). The checkpoint records the data setup (sampler,
  seed, batch size, dataset length, world size, position); a resume with a
  different one logs a warning naming what changed.
- **Things that would still move the generators.** Validation runs between
  saving a checkpoint and the next batch in the uninterrupted run only, so
  the hook restores the generators after every validation; creating a
  dataloader iterator draws a base seed from torch's generator, so the
  train dataloader gets its own ``torch.Generator`` for that.

Not covered: a checkpoint saved in the middle of an epoch of an
epoch-based loop (``CheckpointHook(by_epoch=False)`` with
``EpochBasedTrainLoop``): mmengine restarts that epoch from its first batch,
and the hook warns.
"""
import logging
from typing import Dict, List, Optional

import torch
from mmdet.registry import HOOKS
from mmengine.dist import all_gather_object, get_dist_info
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log
from mmengine.runner import BaseLoop, EpochBasedTrainLoop

from .rng import get_rng_state, set_rng_state

RESUME_STATE_KEY = 'resume_state'
RESUME_STATE_VERSION = 1


def data_setup(runner) -> Dict[str, object]:
    """What fixes the order of the training data, as plain values:
    ``sampler`` (class name), ``seed``, ``shuffle``, ``batch_size``,
    ``dataset_len``, ``world_size``, ``iters_per_epoch`` (epoch-based loops,
    else -1)."""
    loop = runner.train_loop
    loader = loop.dataloader
    sampler = getattr(loader, 'sampler', None)
    batch_sampler = getattr(loader, 'batch_sampler', None)
    if batch_sampler is not None and hasattr(batch_sampler, 'sampler'):
        sampler = batch_sampler.sampler
    batch_size = loader.batch_size
    if batch_size is None and batch_sampler is not None:
        batch_size = getattr(batch_sampler, 'batch_size', None)
    seed = getattr(sampler, 'seed', None)
    shuffle = getattr(sampler, 'shuffle', None)
    return dict(
        sampler=type(sampler).__name__,
        seed=-1 if seed is None else int(seed),
        shuffle=-1 if shuffle is None else int(bool(shuffle)),
        batch_size=-1 if batch_size is None else int(batch_size),
        dataset_len=len(loader.dataset),
        world_size=get_dist_info()[1],
        iters_per_epoch=len(loader)
        if isinstance(loop, EpochBasedTrainLoop) else -1)


@HOOKS.register_module()
class ResumeStateHook(Hook):
    """Save the generator states with every training checkpoint and restore
    them on ``--resume`` (see the module docstring).

    Priority ``LOW``: the states are gathered in ``after_train_iter`` /
    ``after_train_epoch`` before ``CheckpointHook`` (``VERY_LOW``) saves,
    and restored in ``before_train_epoch`` after the ``NORMAL`` hooks
    (``DistSamplerSeedHook``, ``IterTimerHook``).
    """

    priority = 'LOW'

    def __init__(self) -> None:
        self._stash: Optional[tuple] = None  # (meta iter, states per rank)
        self._pending: Optional[dict] = None  # this rank's state to restore
        self._pending_iter = -1
        self._val_state: Optional[dict] = None

    # ------------------------------------------------------------------
    # Saving
    # ------------------------------------------------------------------
    @staticmethod
    def _checkpoint_hooks(runner) -> List[CheckpointHook]:
        return [h for h in runner.hooks if isinstance(h, CheckpointHook)]

    def _gather(self) -> List[dict]:
        """Every rank's generator states (a collective with several ranks:
        all ranks call it at the same iterations)."""
        state = self._val_state if self._val_state is not None \
            else get_rng_state()
        return all_gather_object(state) if get_dist_info()[1] > 1 \
            else [state]

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        """Gather the states when an iteration checkpoint is due."""
        due = any(
            not h.by_epoch and (
                h.every_n_train_iters(runner, h.interval, h.save_begin)
                or (h.save_last and h.is_last_train_iter(runner)))
            for h in self._checkpoint_hooks(runner))
        if due:
            self._stash = (runner.iter + 1, self._gather())

    def after_train_epoch(self, runner) -> None:
        """Gather the states when an epoch checkpoint is due."""
        due = any(
            h.by_epoch and (
                h.every_n_epochs(runner, h.interval, h.save_begin)
                or (h.save_last and h.is_last_train_epoch(runner)))
            for h in self._checkpoint_hooks(runner))
        if due:
            self._stash = (runner.iter, self._gather())

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Store the states of every rank and the data setup (main process:
        mmengine saves there only)."""
        meta_iter = checkpoint.get('meta', {}).get('iter', runner.iter)
        if self._stash is not None and self._stash[0] == meta_iter:
            states = self._stash[1]
        else:  # a checkpoint saved elsewhere (e.g. the best one)
            states = [self._val_state if self._val_state is not None
                      else get_rng_state()]
        checkpoint[RESUME_STATE_KEY] = dict(
            version=RESUME_STATE_VERSION, iter=int(meta_iter), rng=states,
            data=data_setup(runner)
            if isinstance(getattr(runner, '_train_loop', None), BaseLoop)
            else {})

    # ------------------------------------------------------------------
    # Restoring
    # ------------------------------------------------------------------
    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """On ``--resume``: keep this rank's states for the first batch and
        check the data setup. (``load_from`` without resume is ignored.)"""
        if not getattr(runner, '_resume', False):
            return
        saved = checkpoint.get(RESUME_STATE_KEY)
        meta_iter = checkpoint.get('meta', {}).get('iter', '?')
        if saved is None:
            print_log(
                f'The checkpoint of iteration {meta_iter} holds no '
                f'{RESUME_STATE_KEY!r} (written without ResumeStateHook): '
                'training resumes with freshly seeded generators and will '
                'not repeat the uninterrupted run exactly.',
                logger='current', level=logging.WARNING)
            return
        rank, world_size = get_dist_info()
        states = saved['rng']
        if len(states) != world_size:
            print_log(
                f'The checkpoint was written by {len(states)} processes and '
                f'is resumed with {world_size}: the generators of the ranks '
                'that have a saved state are restored, the run will not '
                'repeat the uninterrupted one exactly.',
                logger='current', level=logging.WARNING)
        self._pending = states[rank] if rank < len(states) else None
        self._pending_iter = int(saved.get('iter', -1))
        now = data_setup(runner)
        changed = [f'{k}: {saved["data"].get(k)} -> {v}'
                   for k, v in now.items() if saved['data'].get(k) != v]
        if changed:
            print_log(
                'The training data setup differs from the checkpoint\'s ('
                + '; '.join(changed) + '): the resumed run will not see the '
                'episodes of the uninterrupted run.',
                logger='current', level=logging.WARNING)
        ipe = now['iters_per_epoch']
        if ipe > 0 and self._pending_iter % ipe:
            print_log(
                f'The checkpoint of iteration {self._pending_iter} was saved '
                'in the middle of an epoch: mmengine restarts that epoch '
                'from its first batch, so the run will not repeat the '
                'uninterrupted one exactly. Checkpoint epoch-based runs by '
                'epoch.', logger='current', level=logging.WARNING)

    def before_train(self, runner) -> None:
        """Give the train dataloader its own generator for the base seed
        torch draws whenever a dataloader iterator is created."""
        loader = runner.train_loop.dataloader
        if isinstance(loader, torch.utils.data.DataLoader) and \
                loader.generator is None:
            generator = torch.Generator()
            generator.manual_seed(int(runner.seed or 0) + get_dist_info()[0])
            loader.generator = generator

    def before_train_epoch(self, runner) -> None:
        """Restore the saved states right before the first batch after the
        resume (an iteration-based loop then skips the trained batches;
        loading them draws nothing from the generators)."""
        if self._pending is None:
            return
        set_rng_state(self._pending)
        self._pending = None
        print_log(
            'Restored the Python, numpy and torch generator states of '
            f'iteration {self._pending_iter} from the checkpoint.',
            logger='current')

    def before_val(self, runner) -> None:
        """Remember the generators: validation must not move them."""
        self._val_state = get_rng_state()

    def after_val(self, runner) -> None:
        """Put the generators back as they were before validation."""
        if self._val_state is not None:
            set_rng_state(self._val_state)
            self._val_state = None

"""Stop (or skip) on non-finite training losses, naming what went wrong.

A NaN or inf loss term poisons the weights through one optimizer step and
every logged average after it; by the time mmdet's ``CheckInvalidLossHook``
(``after_train_iter``, every 50 iterations, the total only) sees it, the step
is done and the batch is gone. :class:`NonFiniteLossHook` checks every loss
term of every iteration *before* the backward pass and the step.

Mechanism (the smallest that works for every optimizer wrapper and for
``MMDistributedDataParallel``, without a custom OptimWrapper in each
config): in ``before_train`` the hook wraps two bound methods of the run,
and restores them in ``after_train``:

- ``parse_losses`` of the model (the unwrapped one: ``BaseModel.train_step``
  and ``MMDistributedDataParallel.train_step`` both call
  ``module.parse_losses(losses)`` between the forward pass and
  ``optim_wrapper.update_params``). It sees every loss term by name, so it
  is where the check runs: one host sync per iteration (the log already
  makes several).
- ``train_step`` of ``runner.model`` (the wrapper if any), only so that
  ``mode='skip'`` can abandon the iteration: the check raises a private
  exception that this wrapper catches, so ``update_params`` (backward,
  step, zero_grad) never runs for the batch and nothing is logged for it.

``before_train_iter`` keeps a reference to the batch, whose data samples
carry the episodes (``episode_id``, ``img_id``, ``query_ann_ids``
metainfo, see ``oneshot/datasets/transforms/formatting.py``), so the error
can name them.
"""
import logging
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmdet.registry import HOOKS
from mmengine.dist import all_reduce, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.runner import EpochBasedTrainLoop

MODES = ('raise', 'skip')
# Message hub key of the number of skipped batches (saved in checkpoints,
# so the count survives --resume).
SKIPPED_KEY = 'nonfinite_loss_skipped_batches'


class NonFiniteLossError(RuntimeError):
    """A loss term was NaN or inf (``NonFiniteLossHook``, mode 'raise')."""


class _SkipBatch(Exception):
    """Raised by the loss check in mode 'skip'; caught in ``train_step``."""


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Check every loss term of every training iteration for NaN / inf.

    Default (``mode='raise'``, set in ``configs/_base_/default_runtime.py``
    as ``default_hooks.nonfinite_loss``): training stops with a
    :class:`NonFiniteLossError` naming the iteration (as the log counts it,
    ``Iter(train) [N/...]``; epoch and batch too in epoch-based loops), the
    non-finite loss terms and their values, and the batch's episodes
    (episode id, target image id, query annotation ids) with the annotation
    file, before the optimizer step: the weights and the last checkpoint
    are those of the previous iteration.

    ``mode='skip'``: the batch is dropped instead (no backward, no
    optimizer step, nothing logged for it) with a warning naming the same
    things and the number of batches skipped so far; the count is kept in
    the message hub (``nonfinite_loss_skipped_batches``, saved in
    checkpoints) and reported at the end of training. With several
    processes every rank skips when any rank's loss is non-finite (one
    scalar all-reduce per iteration), so the ranks stay in step.

    Set ``default_hooks.nonfinite_loss.mode='skip'`` (config or
    ``--cfg-options``) to skip; ``default_hooks.nonfinite_loss=None``
    removes the check. The mechanism is described in the module docstring.

    Args:
        mode (str): ``'raise'`` (default) or ``'skip'``.
    """

    priority = 'NORMAL'

    def __init__(self, mode: str = 'raise') -> None:
        if mode not in MODES:
            raise ValueError(
                f'NonFiniteLossHook: mode must be one of {MODES}, got '
                f'{mode!r} (default_hooks.nonfinite_loss.mode).')
        self.mode = mode
        self.num_skipped = 0
        self._runner = None
        self._batch: Optional[dict] = None
        self._where = ''
        self._originals: List[Tuple[object, str]] = []

    # ------------------------------------------------------------------
    # hook points
    # ------------------------------------------------------------------
    def before_train(self, runner) -> None:
        self._runner = runner
        self.num_skipped = int(runner.message_hub.get_info(SKIPPED_KEY, 0))
        model = runner.model.module if is_model_wrapper(runner.model) \
            else runner.model
        parse_losses = model.parse_losses
        train_step = runner.model.train_step

        def checked_parse_losses(losses: Dict[str, torch.Tensor]):
            loss, log_vars = parse_losses(losses)
            self._check(log_vars)
            return loss, log_vars

        def skipping_train_step(*args, **kwargs):
            try:
                return train_step(*args, **kwargs)
            except _SkipBatch:
                return {}

        self._patch(model, 'parse_losses', checked_parse_losses)
        self._patch(runner.model, 'train_step', skipping_train_step)

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch: Optional[dict] = None) -> None:
        self._batch = data_batch
        where = f'iteration {runner.iter + 1}'
        if isinstance(runner.train_loop, EpochBasedTrainLoop):
            where = (f'epoch {runner.epoch + 1}, batch {batch_idx + 1} '
                     f'({where})')
        self._where = where

    def after_train(self, runner) -> None:
        for obj, name in reversed(self._originals):
            # The patches are instance attributes: deleting them brings the
            # class methods back.
            delattr(obj, name)
        self._originals = []
        self._batch = None
        if self.num_skipped:
            print_log(
                f'NonFiniteLossHook: {self.num_skipped} training batch(es) '
                'were skipped for non-finite losses (see the warnings above '
                'for their episodes).', logger='current',
                level=logging.WARNING)

    # ------------------------------------------------------------------
    # the check
    # ------------------------------------------------------------------
    def _patch(self, obj: object, name: str, func) -> None:
        if name in vars(obj):
            raise RuntimeError(
                f'NonFiniteLossHook: {type(obj).__name__}.{name} is already '
                'patched on the instance; register the hook once.')
        setattr(obj, name, func)
        self._originals.append((obj, name))

    def _check(self, log_vars: Dict[str, torch.Tensor]) -> None:
        terms = [(k, v) for k, v in log_vars.items()
                 if 'loss' in k and isinstance(v, torch.Tensor)]
        if not terms:
            return
        values = torch.cat([v.detach().float().reshape(-1) for _, v in terms])
        bad = (~torch.isfinite(values)).any().float()
        distributed = get_world_size() > 1
        local_bad = bool(bad.item())
        if distributed:
            all_reduce(bad, op='max')
        if not bool(bad.item()):
            return
        message = self._describe(terms, local_bad)
        if self.mode == 'raise':
            raise NonFiniteLossError(
                message + ' Training stopped before the optimizer step. Look '
                'at these episodes (boxes, image sizes), lower the learning '
                'rate or add gradient clipping (optim_wrapper.clip_grad), '
                "or set default_hooks.nonfinite_loss.mode='skip' to skip "
                'such batches.')
        self.num_skipped += 1
        self._runner.message_hub.update_info(SKIPPED_KEY, self.num_skipped)
        print_log(
            f'{message} Batch skipped (no optimizer step); '
            f'{self.num_skipped} batch(es) skipped so far.',
            logger='current', level=logging.WARNING)
        raise _SkipBatch()

    def _describe(self, terms: Sequence[Tuple[str, torch.Tensor]],
                  local_bad: bool) -> str:
        if not local_bad:
            return (f'Non-finite loss at {self._where} on another process '
                    '(this one was finite).')
        bad = [(k, v) for k, v in terms
               if not bool(torch.isfinite(v.detach()).all())]
        named = [(k, v) for k, v in bad if k != 'loss'] or bad
        shown = ', '.join(
            f'{k}={v.detach().float().mean().item()}' for k, v in named)
        return (f'Non-finite loss at {self._where}: {shown}. Episodes of '
                f'the batch{self._dataset_name()}: {self._episodes()}.')

    def _episodes(self) -> str:
        samples = (self._batch or {}).get('data_samples') \
            if isinstance(self._batch, dict) else None
        if not samples:
            return 'unknown (no data_samples in the batch)'
        parts = []
        for sample in samples:
            meta = getattr(sample, 'metainfo', {})
            parts.append(
                f'episode {meta.get("episode_id")} (target image id '
                f'{meta.get("img_id")}, query annotation ids '
                f'{_as_list(meta.get("query_ann_ids"))})')
        return '; '.join(parts)

    def _dataset_name(self) -> str:
        try:
            ann_file = self._runner.train_dataloader.dataset.ann_file
        except AttributeError:
            return ''
        return f' (of {ann_file!r})'


def _as_list(value: object) -> object:
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    return value

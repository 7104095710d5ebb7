"""mmengine's ``Runner`` with the project's checkpoint loading.

``load_from`` and ``--resume`` go through
:mod:`oneshot.utils.checkpoint` instead of mmengine's ``CheckpointLoader``:

- ``load_from`` (training initialisation, ``tools/test.py``'s checkpoint):
  weights-only reading, a full pickle only with the config key
  ``trust_checkpoint = True`` (``--trust-checkpoint`` in the tools); the
  state dict must fit the model exactly (an error names the config, the
  checkpoint and the first differing parameters).
- ``resume``: the run's own checkpoint, so a full pickle is allowed when the
  weights-only reading (which reads mmengine's checkpoints) cannot; the same
  strict check. ``--resume`` without a path takes the newest checkpoint of
  the work dir that can be read, with a warning for each one skipped
  (empty or truncated files of a run killed while saving).

Every config's runtime base sets ``runner_type = 'OneShotRunner'``; the
tools build the runner with :func:`build_runner`, which falls back to this
class when a config sets no ``runner_type``.
"""
import os.path as osp
import re
from typing import Any, Callable, List, Union

from mmengine.config import Config
from mmengine.model import is_model_wrapper
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from ..utils.checkpoint import (CheckpointError, CheckpointMismatchError,
                                load_checkpoint_file,
                                load_state_dict_strictly)


@RUNNERS.register_module()
class OneShotRunner(Runner):
    """A ``Runner`` whose checkpoint loading is safe and strict (see the
    module docstring). Built like mmengine's: ``OneShotRunner.from_cfg(cfg)``
    or ``RUNNERS.build(cfg)`` with ``runner_type='OneShotRunner'``."""

    _resuming = False

    @property
    def trust_checkpoint(self) -> bool:
        """The config key ``trust_checkpoint``: allow full pickles for
        ``load_from``."""
        return bool(self.cfg.get('trust_checkpoint', False))

    def load_checkpoint(self,
                        filename: str,
                        map_location: Union[str, Callable] = 'cpu',
                        strict: bool = True,
                        revise_keys: list = [(r'^module.', '')]) -> Any:
        """Load a checkpoint into the model, safely and strictly.

        Same signature as mmengine's; ``strict`` is accepted for
        compatibility but always true: a checkpoint that does not fit the
        model raises :class:`CheckpointMismatchError`.
        """
        checkpoint = load_checkpoint_file(
            filename, map_location=map_location,
            trust=self._resuming or self.trust_checkpoint)
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        model = self.model.module if is_model_wrapper(self.model) \
            else self.model
        load_state_dict_strictly(model, checkpoint, filename,
                                 config=self.cfg.filename,
                                 revise_keys=revise_keys)
        self._has_loaded = True
        self.logger.info(f'Load checkpoint from {filename}')
        return checkpoint

    def resume(self, filename: str, *args, **kwargs) -> None:
        """mmengine's resume; the file is trusted (the run's own)."""
        self._resuming = True
        try:
            super().resume(filename, *args, **kwargs)
        finally:
            self._resuming = False

    def load_or_resume(self) -> None:
        """As mmengine's, but ``resume=True`` without ``load_from`` resumes
        from the newest *readable* checkpoint of the work dir."""
        if self._has_loaded:
            return None
        if not (self._resume and self._load_from is None):
            return super().load_or_resume()
        candidates = resume_candidates(self.work_dir)
        for path in candidates:
            try:
                self.resume(path)
            except CheckpointMismatchError:
                raise
            except CheckpointError as e:
                self.logger.warning(
                    f'{e}\nSkipping it; resuming from the previous '
                    'checkpoint of the work dir instead.')
                continue
            self.logger.info(f'Auto resumed from the latest readable '
                             f'checkpoint {path}.')
            self._has_loaded = True
            return None
        self.logger.info(
            f'No checkpoint to resume from in {self.work_dir}'
            + (' that can be read' if candidates else '') +
            '; training from the start.')
        return None


def _checkpoint_order(path: str) -> tuple:
    """Sort key: iteration / epoch number in the name, then mtime."""
    found = re.search(r'(\d+)\.pth$', osp.basename(path))
    return (int(found.group(1)) if found else -1, osp.getmtime(path))


def resume_candidates(work_dir: str) -> List[str]:
    """Checkpoints to auto-resume from, newest first: the file named in
    ``last_checkpoint``, then the other ``*.pth`` of the work dir by the
    number in their name (``iter_N.pth`` / ``epoch_N.pth``)."""
    import glob
    out: List[str] = []
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            last = f.read().strip()
        if last:
            out.append(last)
    others = sorted(glob.glob(osp.join(work_dir, '*.pth')),
                    key=_checkpoint_order, reverse=True)
    seen = {osp.abspath(p) for p in out}
    out += [p for p in others if osp.abspath(p) not in seen]
    return out


def build_runner(cfg: Config) -> Runner:
    """The runner of a config: ``RUNNERS.build(cfg)`` when it names a
    ``runner_type``, else :class:`OneShotRunner`."""
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return OneShotRunner.from_cfg(cfg)

"""Loading checkpoints safely and strictly: one path for the demo, the
inferencer, ``tools/test.py``, ``load_from`` and ``--resume``.

Safety. A ``.pth`` file is a pickle, and unpickling a pickle can run any code
its author chose. So a checkpoint is always read with torch's weights-only
unpickler first (``torch.load(weights_only=True)``), which rebuilds tensors
and plain containers and refuses every other object. Besides tensors, the
checkpoints mmengine writes during training hold the message hub's
``HistoryBuffer`` log statistics (numpy arrays, and the buffer's
``min`` / ``max`` / ``current`` / ``mean`` methods, which protocol-2 pickles
store as ``getattr(HistoryBuffer, 'mean')``). For those, and only while one
file is read, the weights-only unpickler is given a narrow allow-list
(:func:`mmengine_safe_globals`): the ``HistoryBuffer`` class, numpy's array,
dtype and scalar rebuilders, and a ``getattr`` that returns nothing but those
four methods of ``HistoryBuffer``. Nothing on the list runs code of the
file's choosing, so a run's own checkpoints load without any opt-in.

Anything else (a pickled object of another class, ``os.system``, ``exec``
...) makes :func:`load_checkpoint_file` raise
:class:`UntrustedCheckpointError` before a single object is built, unless
the caller trusts the file: ``trust=True``, which the tools expose as
``--trust-checkpoint`` (``tools/demo.py``, ``tools/test.py``,
``tools/train.py`` for ``load_from``), ``OneShotInferencer(...,
trust_checkpoint=True)`` and the config key ``trust_checkpoint = True``.
Trusted files are read with ``weights_only=False``. ``--resume`` trusts the
file it resumes from (a run's own checkpoint) and needs no opt-in. The
other way out is ``tools/model_converters/publish_model.py``, which writes a
weights-only file (docs/checkpoints.md).

Strictness. :func:`load_model_weights` loads a state dict only if its
parameter names and shapes are exactly the model's; otherwise
:class:`CheckpointMismatchError` names the checkpoint, the config and the
first missing / unexpected / differently shaped parameters. An empty,
truncated or non-checkpoint file raises :class:`CheckpointError` naming the
file.

Importing ``oneshot`` changes nothing in mmengine: its ``CheckpointLoader``
keeps its own loaders (torch's weights-only default); the project's runner
(``oneshot.engine.OneShotRunner``) and tools call this module explicitly.
"""
import os
import os.path as osp
import pickle
import re
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

# Remote checkpoints (http(s)://, torchvision://, open-mmlab:// ...) go
# through mmengine's loaders, which use torch's weights-only default.
_REMOTE = re.compile(r'^[A-Za-z][A-Za-z0-9+.-]*://')

# The statistics methods HistoryBuffer registers for itself.
_HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')

# Shown with every refusal: how to get the file loaded.
TRUST_HINT = (
    'Only trust a checkpoint you or your own training run wrote. To load it '
    'anyway pass --trust-checkpoint (tools/demo.py, tools/test.py, '
    'tools/train.py), trust_checkpoint=True (OneShotInferencer, or the '
    'config key `trust_checkpoint = True` for load_from), or convert it once '
    'into a weights-only file with `python '
    'tools/model_converters/publish_model.py IN OUT` '
    '(docs/checkpoints.md).')


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used (empty, truncated, not a
    checkpoint, no state dict). The message names the file."""


class UntrustedCheckpointError(CheckpointError):
    """The file holds pickled objects that the weights-only unpickler
    refuses to build; loading it needs an explicit opt-in."""


class CheckpointMismatchError(CheckpointError):
    """The checkpoint's parameters do not fit the model of the config."""


def _restricted_getattr(obj: Any, name: str) -> Any:
    """``getattr`` for the weights-only unpickler: only the statistics
    methods of mmengine's ``HistoryBuffer`` (how protocol-2 pickles store
    ``HistoryBuffer.mean`` & co.)."""
    from mmengine.logging import HistoryBuffer
    if obj is HistoryBuffer and name in _HISTORY_BUFFER_METHODS:
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'getattr({obj!r}, {name!r}) is not allowed: only the statistics '
        'methods of mmengine.logging.HistoryBuffer are.')


def mmengine_safe_globals() -> List[Any]:
    """The allow-list given to torch's weights-only unpickler while a
    checkpoint is read: what mmengine's own training checkpoints hold
    besides tensors (see the module docstring)."""
    from mmengine.logging import HistoryBuffer
    multiarray = getattr(np, '_core', np.core).multiarray
    allowed: List[Any] = [
        HistoryBuffer, np.ndarray, np.dtype, multiarray._reconstruct,
        multiarray.scalar, (_restricted_getattr, 'builtins.getattr')
    ]
    # numpy >= 1.25 pickles dtypes through their classes (Float64DType...).
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        allowed += [getattr(dtypes, n) for n in dir(dtypes)
                    if n.endswith('DType')]
    return allowed


def is_remote(filename: str) -> bool:
    """Whether ``filename`` is a URL-like checkpoint address
    (``https://``, ``torchvision://`` ...) rather than a local path."""
    return bool(_REMOTE.match(str(filename)))


def load_checkpoint_file(filename: str,
                         map_location: Any = 'cpu',
                         trust: bool = False) -> Any:
    """Read a checkpoint without running code from it (unless trusted).

    Args:
        filename (str): Local path, or an address mmengine's
            ``CheckpointLoader`` knows (``https://``, ``torchvision://``
            ...; loaded by mmengine, weights-only).
        map_location: Passed to :func:`torch.load`. Defaults to ``'cpu'``.
        trust (bool): Fall back to a full pickle (``weights_only=False``)
            when the weights-only unpickler refuses the file. Only for files
            you wrote yourself. Defaults to False.

    Returns:
        The checkpoint, usually a dict with ``state_dict`` and ``meta``.

    Raises:
        FileNotFoundError: No such file.
        UntrustedCheckpointError: The file needs a full pickle and ``trust``
            is False.
        CheckpointError: The file is empty, truncated or not a checkpoint.
    """
    if is_remote(filename):
        from mmengine.runner.checkpoint import CheckpointLoader
        return CheckpointLoader.load_checkpoint(filename, map_location)
    path = osp.expanduser(str(filename))
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'Checkpoint {filename!r} does not exist (check the path given '
            'to --checkpoint / load_from / --resume / the test tool).')
    if os.path.getsize(path) == 0:
        raise CheckpointError(
            f'Checkpoint {filename!r} is an empty file (0 bytes): the run '
            'that wrote it was probably killed while saving. Use an earlier '
            'checkpoint of that run.')
    try:
        from torch.serialization import safe_globals
        with safe_globals(mmengine_safe_globals()):
            return torch.load(path, map_location=map_location,
                              weights_only=True)
    except pickle.UnpicklingError as e:
        refusal = e
    except Exception as e:  # zip / EOF / format errors vary by cause
        raise _unreadable(filename, e) from e
    if not trust:
        raise UntrustedCheckpointError(
            f'Checkpoint {filename!r} holds pickled objects that the '
            'weights-only loader refuses to build, so it was not loaded '
            f'(nothing in it was run): {_first_line(refusal)}.\n'
            + TRUST_HINT) from refusal
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:
        raise _unreadable(filename, e) from e


def _first_line(error: Exception) -> str:
    """The reason in torch's message, without its advice to allow-list."""
    text = str(error).strip()
    found = re.search(r'GLOBAL ([\w.]+)', text)
    if found:
        return (f'the file refers to {found.group(1)}, which is neither a '
                'tensor nor a plain container')
    return text.splitlines()[0] if text else type(error).__name__


def _unreadable(filename: str, error: Exception) -> CheckpointError:
    return CheckpointError(
        f'Checkpoint {filename!r} cannot be read: it is truncated, damaged '
        f'or not a PyTorch checkpoint ({type(error).__name__}: '
        f'{_first_line(error)}). If a training run was killed while saving '
        'it, use an earlier checkpoint of that run.')


def get_state_dict(checkpoint: Any, filename: str,
                   revise_keys: Sequence[Tuple[str, str]] = (
                       (r'^module\.', ''), )) -> 'OrderedDict[str, Any]':
    """The model state dict of a loaded checkpoint (its ``state_dict``, or
    the checkpoint itself if it is a plain state dict), with ``revise_keys``
    regex substitutions applied (by default the DDP ``module.`` prefix is
    stripped)."""
    state = checkpoint.get('state_dict', checkpoint) if isinstance(
        checkpoint, dict) else None
    if not isinstance(state, dict) or not all(
            isinstance(k, str) for k in state):
        raise CheckpointError(
            f'Checkpoint {filename!r} holds no state_dict (got '
            f'{type(checkpoint).__name__}); expected a dict with a '
            "'state_dict' entry or a plain state dict.")
    metadata = getattr(state, '_metadata', None)
    for pattern, replacement in revise_keys:
        state = OrderedDict(
            (re.sub(pattern, replacement, k), v) for k, v in state.items())
    state = OrderedDict(state)
    if metadata is not None:
        state._metadata = metadata  # type: ignore[attr-defined]
    return state


def _listed(keys: List[str], limit: int = 5) -> str:
    shown = ', '.join(keys[:limit])
    more = f' (+{len(keys) - limit} more)' if len(keys) > limit else ''
    return shown + more


def check_state_dict(model: nn.Module, state: Dict[str, Any], filename: str,
                     config: Optional[str] = None) -> None:
    """Raise :class:`CheckpointMismatchError` unless ``state`` has exactly
    the model's parameter and buffer names, with the same shapes.

    Args:
        model (nn.Module): The model built from the config.
        state (dict): The checkpoint's state dict (prefixes revised).
        filename (str): The checkpoint, named in the error.
        config (str, optional): The config file, named in the error.
    """
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = sorted(
        f'{k}: checkpoint {tuple(state[k].shape)} vs model '
        f'{tuple(own[k].shape)}' for k in set(own) & set(state)
        if hasattr(state[k], 'shape') and state[k].shape != own[k].shape)
    if not (missing or unexpected or mismatched):
        return
    lines = []
    for title, keys in (('missing in the checkpoint', missing),
                        ('not in the model', unexpected),
                        ('with different shapes', mismatched)):
        if keys:
            lines.append(f'  {len(keys)} parameters {title}: '
                         f'{_listed(keys)}')
    raise CheckpointMismatchError(
        f'Checkpoint {filename!r} does not match the config '
        f'{config or "<config>"!r}:\n' + '\n'.join(lines) +
        '\nUse the config the checkpoint was trained with (its work_dir '
        'holds a copy).')


def load_state_dict_strictly(model: nn.Module, checkpoint: Any,
                             filename: str, config: Optional[str] = None,
                             revise_keys: Sequence[Tuple[str, str]] = (
                                 (r'^module\.', ''), )) -> None:
    """Load a loaded ``checkpoint`` into ``model`` after
    :func:`check_state_dict` (names and shapes must match exactly)."""
    state = get_state_dict(checkpoint, filename, revise_keys)
    check_state_dict(model, state, filename, config)
    model.load_state_dict(state, strict=True)


def load_model_weights(model: nn.Module,
                       filename: str,
                       config: Optional[str] = None,
                       map_location: Any = 'cpu',
                       trust: bool = False) -> Any:
    """Read ``filename`` safely (:func:`load_checkpoint_file`) and load it
    strictly into ``model`` (:func:`load_state_dict_strictly`).

    Args:
        model (nn.Module): The model built from ``config``.
        filename (str): The checkpoint.
        config (str, optional): The config file (named in errors).
        map_location: Passed to :func:`torch.load`.
        trust (bool): Allow a full pickle (see :func:`load_checkpoint_file`).

    Returns:
        The loaded checkpoint (``meta`` holds e.g. ``dataset_meta``).
    """
    checkpoint = load_checkpoint_file(filename, map_location, trust=trust)
    load_state_dict_strictly(model, checkpoint, filename, config)
    return checkpoint


def weights_only_safe(value: Any, path: str = 'meta',
                      dropped: Optional[List[str]] = None) -> Any:
    """A copy of ``value`` that ``torch.load(weights_only=True)`` accepts
    without any allow-list: dicts with str/int keys, lists, tuples, str,
    int, float, bool, None and tensors are kept; numpy scalars and arrays
    become Python numbers and lists; anything else is dropped and its path
    appended to ``dropped``."""
    if dropped is None:
        dropped = []
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return value
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray) and value.dtype != object:
        return value.tolist()
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, (str, int)):
                dropped.append(f'{path}[{k!r}]')
                continue
            item = weights_only_safe(v, f'{path}.{k}', dropped)
            if item is not _DROP:
                out[k] = item
        return out
    if isinstance(value, (list, tuple)):
        items = [weights_only_safe(v, f'{path}[{i}]', dropped)
                 for i, v in enumerate(value)]
        items = [v for v in items if v is not _DROP]
        return items if isinstance(value, list) else tuple(items)
    dropped.append(f'{path} ({type(value).__name__})')
    return _DROP


class _Dropped:
    """Marker for values :func:`weights_only_safe` leaves out."""


_DROP = _Dropped()

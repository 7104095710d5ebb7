"""Loading mmengine checkpoints on torch >= 2.6.

torch 2.6 switched ``torch.load`` to ``weights_only=True``. mmengine 0.10.7
still calls ``torch.load(filename, map_location=...)`` and its checkpoints are
full pickles: besides tensors they hold the message hub, whose
``HistoryBuffer`` objects pickle their statistics methods through
``builtins.getattr``. Allow-listing ``getattr`` for the weights-only
unpickler would re-open the door that ``weights_only`` closes, so an
allow-list is not a real option here.

Instead, local checkpoint files (``--resume``, ``load_from``, the test tool's
checkpoint argument) are loaded the way mmengine was written to load them,
with ``weights_only=False``. That is safe exactly when the file is trusted,
which is the case for checkpoints written by your own training runs; do not
point ``load_from`` at a file from an untrusted source. Remote schemes
(``torchvision://``, ``http(s)://``) keep torch's weights-only default: they
are plain state dicts and load fine that way.
"""
import os.path as osp
from typing import Any, Optional

import torch
from mmengine.runner.checkpoint import CheckpointLoader


def load_local_checkpoint(filename: str,
                          map_location: Optional[Any] = None) -> Any:
    """Load a local mmengine checkpoint as a trusted full pickle.

    Args:
        filename (str): Path of the checkpoint file.
        map_location: Passed to :func:`torch.load`.

    Returns:
        The unpickled checkpoint (usually a dict with ``state_dict``,
        ``meta``, ``optimizer``, ``message_hub`` ...).
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(
            f'Checkpoint {filename!r} does not exist. Check the path given '
            'to --resume / load_from / the test tool.')
    return torch.load(filename, map_location=map_location, weights_only=False)


def register_trusted_local_loader() -> None:
    """Make mmengine's ``CheckpointLoader`` use :func:`load_local_checkpoint`
    for plain local paths (the ``''`` prefix). Idempotent."""
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_local_checkpoint, force=True)

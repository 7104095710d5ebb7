"""The global random number generators as plain data, and a seeded fork of
them for one piece of work.

Training draws from four global generators: Python's ``random`` and numpy's
(data augmentation such as ``RandomFlip``), torch's CPU generator (RoI and
anchor samplers, dropout) and, on GPUs, torch's CUDA generators.
:func:`get_rng_state` / :func:`set_rng_state` capture and restore all of
them as tensors, ints and floats only, so that a checkpoint holding them
loads with ``torch.load(..., weights_only=True)`` as well.
:func:`seeded_global_rng` runs a block (one training episode's pipeline)
with the generators seeded from a string and puts the previous states back
afterwards.
"""
import contextlib
import hashlib
import random
from typing import Dict, Iterator, Optional

import numpy as np
import torch


def get_rng_state() -> Dict[str, object]:
    """The states of the global Python, numpy, torch CPU and (if CUDA is
    initialised) torch CUDA generators.

    Returns:
        dict: ``python`` (int64 tensor of the 625 Mersenne Twister words and
        position, plus ``python_gauss``), ``numpy`` (uint32 words as an
        int64 tensor, plus ``numpy_pos``, ``numpy_has_gauss``,
        ``numpy_gauss``), ``torch`` (uint8 tensor) and ``cuda`` (list of
        uint8 tensors, one per device, empty without CUDA).
    """
    version, words, gauss = random.getstate()
    if version != 3:
        raise RuntimeError(f'Unknown Python random state version {version}')
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    if kind != 'MT19937':
        raise RuntimeError(f'Unknown numpy random state kind {kind!r}')
    cuda = []
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        cuda = [s.clone() for s in torch.cuda.get_rng_state_all()]
    return dict(
        python=torch.tensor(words, dtype=torch.int64),
        python_gauss=gauss,
        numpy=torch.from_numpy(keys.astype(np.int64)),
        numpy_pos=int(pos),
        numpy_has_gauss=int(has_gauss),
        numpy_gauss=float(cached),
        torch=torch.get_rng_state().clone(),
        cuda=cuda)


def set_rng_state(state: Dict[str, object]) -> None:
    """Restore the generators captured by :func:`get_rng_state`.

    CUDA states are restored when this process has as many CUDA devices as
    were saved; otherwise they are left alone (e.g. a GPU run resumed on a
    CPU).
    """
    words = tuple(int(w) for w in state['python'].tolist())
    gauss = state['python_gauss']
    random.setstate((3, words, None if gauss is None else float(gauss)))
    keys = np.asarray(state['numpy'].tolist(), dtype=np.uint32)
    np.random.set_state(('MT19937', keys, int(state['numpy_pos']),
                         int(state['numpy_has_gauss']),
                         float(state['numpy_gauss'])))
    torch.set_rng_state(state['torch'].to(torch.uint8).cpu())
    cuda = state.get('cuda') or []
    if cuda and torch.cuda.is_available() and \
            len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda])


def _derive(seed: str, nbytes: int) -> int:
    digest = hashlib.sha256(seed.encode('utf-8')).digest()
    return int.from_bytes(digest[:nbytes], 'little')


@contextlib.contextmanager
def seeded_global_rng(seed: Optional[str]) -> Iterator[None]:
    """Run the block with the global Python, numpy and torch CPU generators
    seeded from ``seed``; their previous states are restored on exit.

    The result of the block is then a function of ``seed`` alone (not of
    what was drawn before, in this process or in a dataloader worker), and
    the surrounding code sees the generators as if the block had drawn
    nothing. The CUDA generators are not touched (torch's CPU generator is
    seeded directly, not through ``torch.manual_seed``).

    Args:
        seed (str, optional): Any string; ``None`` runs the block unseeded.
    """
    if seed is None:
        yield
        return
    seed = str(seed)
    py_state = random.getstate()
    np_state = np.random.get_state()
    torch_state = torch.get_rng_state()
    try:
        random.seed(seed)  # strings are hashed with SHA-512, not hash()
        np.random.seed(_derive(seed, 4))
        torch.default_generator.manual_seed(_derive(seed, 7))
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        torch.set_rng_state(torch_state)

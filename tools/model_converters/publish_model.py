"""Turn a training checkpoint into a file that is safe to publish and load.

    python tools/model_converters/publish_model.py IN OUT [--trust-checkpoint]

Keeps the model's ``state_dict`` and the ``meta`` (config text, dataset
classes, epoch / iteration, seed ...) with every value reduced to plain
Python types and tensors, and drops everything else: the optimizer state,
the message hub (log statistics pickled as ``HistoryBuffer`` objects), the
parameter schedulers and any other entry (e.g. a resume state). The result
loads with ``torch.load(path, weights_only=True)`` without any allow-list;
this is checked before the file gets its final name. As in MMDetection the
first 8 hex digits of its sha256 go into the name: ``OUT`` = ``model.pth``
gives ``model-<hash8>.pth``.

IN is read weights-only (a run's own mmengine checkpoints load);
``--trust-checkpoint`` allows a full pickle for a file you wrote yourself
that needs one. See docs/checkpoints.md.
"""
import argparse
import hashlib
import os
import os.path as osp
import sys
from typing import List, Tuple

import torch

sys.path.insert(
    0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from oneshot.utils.checkpoint import (  # noqa: E402
    CheckpointError, get_state_dict, load_checkpoint_file, weights_only_safe)

KEPT = ('state_dict', 'meta')


def sha256_of(path: str) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def published_name(out_file: str, sha: str) -> str:
    """``model.pth`` -> ``model-<first 8 hex digits>.pth``."""
    stem = out_file[:-len('.pth')] if out_file.endswith('.pth') else out_file
    return f'{stem}-{sha[:8]}.pth'


def publish(in_file: str, out_file: str,
            trust: bool = False) -> Tuple[str, List[str]]:
    """Write the weights-only copy of ``in_file``.

    Args:
        in_file (str): The training checkpoint.
        out_file (str): Output path; the final name gets the hash.
        trust (bool): Allow a full pickle for reading ``in_file``.

    Returns:
        tuple: The final path and what was dropped (top-level entries and
        meta values that are not plain data).
    """
    if not out_file.endswith('.pth'):
        raise ValueError(f'OUT must end with .pth, got {out_file!r}')
    checkpoint = load_checkpoint_file(in_file, map_location='cpu',
                                      trust=trust)
    state = get_state_dict(checkpoint, in_file, revise_keys=())
    tensors = {k: v.detach().cpu().contiguous() if isinstance(
        v, torch.Tensor) else v for k, v in state.items()}
    bad = [k for k, v in tensors.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(
            f'Checkpoint {in_file!r}: state_dict entries that are not '
            f'tensors: {", ".join(bad[:5])}')
    dropped: List[str] = []
    if isinstance(checkpoint, dict) and 'state_dict' in checkpoint:
        dropped += [k for k in checkpoint if k not in KEPT]
        meta = weights_only_safe(checkpoint.get('meta') or {}, 'meta',
                                 dropped)
    else:
        meta = {}
    out = dict(state_dict=tensors, meta=meta)

    out_dir = osp.dirname(osp.abspath(out_file))
    os.makedirs(out_dir, exist_ok=True)
    tmp = out_file + '.tmp'
    torch.save(out, tmp)
    try:
        torch.load(tmp, map_location='cpu', weights_only=True)
    except Exception as e:
        os.remove(tmp)
        raise RuntimeError(
            f'The published copy of {in_file!r} does not load weights-only '
            f'({e}); nothing was written.') from e
    final = published_name(out_file, sha256_of(tmp))
    os.replace(tmp, final)
    return final, dropped


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(
        description='Publish a checkpoint: weights and plain meta only, '
        'weights-only loadable, sha256 prefix in the name.')
    parser.add_argument('in_file', help='input checkpoint filename')
    parser.add_argument('out_file', help='output checkpoint filename (.pth)')
    parser.add_argument(
        '--trust-checkpoint', action='store_true',
        help='allow IN to be unpickled fully if it is not weights-only '
        '(only for files you wrote yourself)')
    args = parser.parse_args(argv)
    try:
        final, dropped = publish(args.in_file, args.out_file,
                                 trust=args.trust_checkpoint)
    except (CheckpointError, ValueError, FileNotFoundError) as e:
        raise SystemExit(f'publish_model.py: {e}') from e
    if dropped:
        print(f'Dropped: {", ".join(dropped)}')
    print(f'Published {final} (loads with torch.load(weights_only=True)).')
    return final


if __name__ == '__main__':
    main()

"""Turn ImageNet classification weights you bring (a torchvision or timm
ResNet state dict, ``.pth`` or ``.safetensors``) into a backbone checkpoint
for the configs.

    python tools/model_converters/imagenet_resnet_to_backbone.py IN OUT \
        [--depth 50] [--key state_dict] [--trust-checkpoint]

The classifier (``fc.*``, mmpretrain's ``head.*``) is dropped; ``module.``
(DDP), ``model.`` (training-script wrappers) and ``backbone.`` (mmpretrain)
prefixes are stripped. Every key of mmdet's ``ResNet(depth=DEPTH)`` must
then be present with the right shape, and no other key may remain;
otherwise nothing is written and the error says which keys are missing,
left over or of another shape (and which depth the file looks like). BN
``num_batches_tracked`` counters, absent from older torchvision files, are
filled with 0. OUT is ``dict(state_dict=..., meta=...)`` with plain values
only: it loads with ``torch.load(weights_only=True)`` (checked before it
gets its name), so a config's ``init_cfg=dict(type='Pretrained',
checkpoint=OUT)`` reads it with mmengine's default loader.

IN is read with the project's safe loader (weights-only; a full pickle
only with ``--trust-checkpoint``, for a file you wrote yourself);
``.safetensors`` needs the ``safetensors`` package. ``--key`` picks the
entry of a checkpoint dict that holds the weights (default: ``state_dict``,
else ``model``, else the dict itself).

Which ImageNet: the papers' protocol starts from a ResNet-50 trained on
ImageNet **without the COCO-related classes**; the standard ImageNet-1k
weights (torchvision, timm) were trained on classes that overlap COCO's
unseen classes and inflate unseen-class AP (docs/protocol.md, "Backbone
pre-training").
"""
import argparse
import os
import os.path as osp
import re
import sys
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch

sys.path.insert(
    0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from oneshot.utils.checkpoint import (  # noqa: E402
    CheckpointError, load_checkpoint_file)

# Wrappers around a ResNet's own names, stripped from the front of a key.
PREFIXES = ('module.', 'model.', 'backbone.')
# The classifier: torchvision / timm ``fc``, mmpretrain ``head``.
CLASSIFIER = ('fc.', 'head.')
# Entries of a checkpoint dict that hold the weights, tried in order.
CONTAINER_KEYS = ('state_dict', 'model')
_BLOCK = re.compile(r'^layer(\d)\.(\d+)\.')


class ConversionError(CheckpointError):
    """The weights do not make the requested backbone; names the file and
    the keys."""


def read_weights(path: str, key: Optional[str] = None,
                 trust: bool = False) -> Dict[str, torch.Tensor]:
    """The tensors of ``path`` (``.pth`` via the safe loader, or
    ``.safetensors``), unwrapped from a checkpoint dict (``key``, else
    ``state_dict``, else ``model``, else the dict itself)."""
    if path.endswith('.safetensors'):
        try:
            from safetensors.torch import load_file
        except ImportError as e:
            raise ConversionError(
                f'{path!r} is a .safetensors file: install the safetensors '
                'package (pip install safetensors) or convert it to .pth.'
            ) from e
        return dict(load_file(path, device='cpu'))
    checkpoint = load_checkpoint_file(path, map_location='cpu', trust=trust)
    if not isinstance(checkpoint, dict):
        raise ConversionError(
            f'{path!r} holds a {type(checkpoint).__name__}, not a state '
            'dict (save model.state_dict(), not the model).')
    if key is not None:
        if key not in checkpoint:
            raise ConversionError(
                f'{path!r} has no entry {key!r}; its entries are '
                f'{sorted(map(str, checkpoint))[:10]}.')
        checkpoint = checkpoint[key]
    else:
        for name in CONTAINER_KEYS:
            if isinstance(checkpoint.get(name), dict):
                checkpoint = checkpoint[name]
                break
    state = {k: v for k, v in checkpoint.items()
             if isinstance(v, torch.Tensor)}
    if not state or not all(isinstance(k, str) for k in state):
        raise ConversionError(
            f'{path!r} holds no tensors under string keys; pass --key with '
            'the entry that holds the state dict.')
    return state


def strip_to_resnet_keys(state: Dict[str, torch.Tensor]
                         ) -> Tuple['OrderedDict[str, torch.Tensor]',
                                    List[str]]:
    """Strip the wrapper prefixes and drop the classifier.

    Returns:
        tuple: The ResNet-named state dict and the dropped classifier keys.
    """
    out: 'OrderedDict[str, torch.Tensor]' = OrderedDict()
    dropped = []
    for name, value in state.items():
        stripped = True
        while stripped:
            stripped = False
            for prefix in PREFIXES:
                if name.startswith(prefix):
                    name, stripped = name[len(prefix):], True
        if name.startswith(CLASSIFIER):
            dropped.append(name)
            continue
        out[name] = value
    return out, dropped


def backbone_shapes(depth: int) -> 'OrderedDict[str, torch.Size]':
    """Names and shapes of mmdet's ``ResNet(depth=depth)`` state dict."""
    from mmdet.models.backbones import ResNet
    if depth not in ResNet.arch_settings:
        raise ValueError(f'--depth must be one of '
                         f'{sorted(ResNet.arch_settings)}, got {depth}.')
    with torch.device('meta'):
        model = ResNet(depth=depth)
    return OrderedDict((k, v.shape) for k, v in model.state_dict().items())


def looks_like(keys) -> str:
    """The ResNet depth a key set has, for errors: ``'ResNet-101'``, or
    a description when it is no mmdet/torchvision ResNet."""
    from mmdet.models.backbones import ResNet
    blocks: Dict[int, set] = {}
    for k in keys:
        m = _BLOCK.match(k)
        if m:
            blocks.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
    stages = tuple(len(blocks.get(i, ())) for i in (1, 2, 3, 4))
    bottleneck = any(re.match(r'^layer\d\.\d+\.conv3\.', k) for k in keys)
    for depth, (block, counts) in ResNet.arch_settings.items():
        if tuple(counts) == stages and (block.expansion == 4) == bottleneck:
            return f'ResNet-{depth}'
    return (f'no torchvision-style ResNet (blocks per stage {stages}, '
            f'{"bottleneck" if bottleneck else "basic"} blocks)')


def _listed(keys: List[str], limit: int = 6) -> str:
    more = f' (+{len(keys) - limit} more)' if len(keys) > limit else ''
    return ', '.join(keys[:limit]) + more


def to_backbone(state: Dict[str, torch.Tensor], depth: int = 50,
                source: str = '<state dict>'
                ) -> 'OrderedDict[str, torch.Tensor]':
    """Check ResNet-named weights against ``ResNet(depth)`` and return them
    in its key order (``num_batches_tracked`` filled with 0 if absent).

    Raises:
        ConversionError: Keys missing, left over or of other shapes; the
        message lists them and says which depth ``source`` looks like.
    """
    expected = backbone_shapes(depth)
    missing = [k for k in expected if k not in state
               and not k.endswith('num_batches_tracked')]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        f'{k} {tuple(state[k].shape)} (backbone {tuple(expected[k])})'
        for k in expected if k in state and state[k].shape != expected[k]]
    if missing or unexpected or mismatched:
        lines = [f'{source} does not fit mmdet\'s ResNet(depth={depth}); '
                 f'it looks like {looks_like(state)}.']
        for title, keys in (('missing', missing),
                            ('not in the backbone', unexpected),
                            ('with another shape', mismatched)):
            if keys:
                lines.append(f'  {len(keys)} keys {title}: {_listed(keys)}')
        lines.append(
            'Give ImageNet weights of a torchvision/timm ResNet of this '
            'depth (or --depth N for a ResNet-N backbone); nothing was '
            'written.')
        raise ConversionError('\n'.join(lines))
    return OrderedDict(
        (k, state[k].detach().cpu().contiguous() if k in state else
         torch.zeros((), dtype=torch.long)) for k in expected)


def convert(in_file: str, out_file: str, depth: int = 50,
            key: Optional[str] = None, trust: bool = False) -> dict:
    """Convert ``in_file`` into the weights-only backbone file
    ``out_file``.

    Returns:
        dict: ``out`` (the path), ``keys`` (how many), ``dropped`` (the
        classifier keys) and ``filled`` (the counters filled with 0).
    """
    state, dropped = strip_to_resnet_keys(read_weights(in_file, key, trust))
    backbone = to_backbone(state, depth, repr(in_file))
    filled = [k for k in backbone if k not in state]
    out = dict(state_dict=backbone, meta=dict(
        converted_from=osp.basename(in_file),
        backbone=f'mmdet ResNet(depth={depth})', dropped=dropped))
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    tmp = out_file + '.tmp'
    torch.save(out, tmp)
    try:
        torch.load(tmp, map_location='cpu', weights_only=True)
    except Exception as e:
        os.remove(tmp)
        raise RuntimeError(f'The converted file does not load weights-only '
                           f'({e}); nothing was written.') from e
    os.replace(tmp, out_file)
    return dict(out=out_file, keys=len(backbone), dropped=dropped,
                filled=filled)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(
        description='ImageNet ResNet weights (torchvision / timm) -> a '
        'weights-only mmdet ResNet backbone checkpoint.')
    parser.add_argument('in_file', help='.pth / .pt / .safetensors')
    parser.add_argument('out_file', help='output .pth')
    parser.add_argument('--depth', type=int, default=50,
                        help='ResNet depth of the backbone (default 50)')
    parser.add_argument('--key', default=None,
                        help='checkpoint entry holding the weights '
                        '(default: state_dict, else model, else the file)')
    parser.add_argument(
        '--trust-checkpoint', action='store_true',
        help='allow IN to be unpickled fully if it is not weights-only '
        '(only for files you wrote yourself)')
    args = parser.parse_args(argv)
    try:
        report = convert(args.in_file, args.out_file, args.depth, args.key,
                         args.trust_checkpoint)
    except (CheckpointError, ValueError, FileNotFoundError) as e:
        raise SystemExit(f'imagenet_resnet_to_backbone.py: {e}') from e
    print(f'Dropped the classifier: {", ".join(report["dropped"]) or "-"}')
    if report['filled']:
        print(f'Filled {len(report["filled"])} BN num_batches_tracked '
              'counters with 0.')
    print(f'Wrote {report["out"]}: {report["keys"]} keys of mmdet\'s '
          f'ResNet(depth={args.depth}), weights-only. Use it with '
          f'model.backbone.init_cfg.checkpoint={report["out"]} '
          '(docs/protocol.md, "Backbone pre-training").')
    return report


if __name__ == '__main__':
    main()

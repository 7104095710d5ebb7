"""Record what every quickstart model computes on fixed inputs, or compare
it with a recording: the check that a refactor of the model code changed
nothing.

    python tools/analysis/model_equivalence.py record OUT.pt
    python tools/analysis/model_equivalence.py compare OUT.pt [--atol 1e-6]

For every ``configs/quickstart/*_synthetic.py`` the model is built after
``torch.manual_seed(0)`` (so its initial weights are fixed) and run on one
fixed batch of three episodes (two share their target image; every episode
has two query shots, two episodes share one of them): ``predict`` (boxes,
scores, labels of every episode), the cached path ``predict_with_feats``,
``mode='tensor'``, and in training mode ``loss`` (after
``torch.manual_seed(1)``: samplers draw) with the gradient norm of every
top-level module; and the sum of every ``state_dict`` entry (same
checkpoint keys, same initial weights). ``compare`` prints one line per
config and exits 1 when any output differs by more than ``--atol``.
"""
import argparse
import copy
import glob
import os.path as osp
import sys
from typing import Dict, List

import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)

from mmdet.registry import MODELS  # noqa: E402
from mmdet.structures import DetDataSample  # noqa: E402
from mmdet.utils import register_all_modules  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.structures import InstanceData  # noqa: E402

import oneshot  # noqa: E402,F401

CONFIGS = sorted(
    glob.glob(osp.join(REPO, 'configs', 'quickstart', '*_synthetic.py')))


def _uint8(shape, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, shape, generator=gen, dtype=torch.uint8)


def _sample(img_id: int, label: int, query_ann_ids: List[int]
            ) -> DetDataSample:
    sample = DetDataSample(metainfo=dict(
        img_id=img_id, img_shape=(96, 128), ori_shape=(96, 128),
        scale_factor=(1.0, 1.0), episode_label=label, episode_id=img_id * 10
        + label, query_ann_ids=query_ann_ids))
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor([[10., 12., 50., 60.], [60., 30., 100., 80.]]),
        labels=torch.zeros(2, dtype=torch.long))
    return sample


def fixed_batch() -> dict:
    """Three episodes: two on image 1 (different queries), one on image 2;
    every episode has K = 2 shots, the first two share one of them."""
    img1, img2 = _uint8((3, 96, 128), 0), _uint8((3, 96, 128), 1)
    shots = [_uint8((3, 64, 64), 10 + i) for i in range(4)]
    queries = [
        torch.stack([shots[0], shots[1]]),
        torch.stack([shots[0], shots[2]]),
        torch.stack([shots[3], shots[1]])
    ]
    samples = [_sample(1, 3, [0, 1]), _sample(1, 5, [0, 2]),
               _sample(2, 3, [3, 1])]
    return dict(inputs=dict(img=[img1, img1.clone(), img2], query=queries),
                data_samples=samples)


def _flatten(prefix: str, value, out: Dict[str, torch.Tensor]) -> None:
    if isinstance(value, torch.Tensor):
        out[prefix] = value.detach().clone()
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _flatten(f'{prefix}.{i}', item, out)
    elif isinstance(value, dict):
        for key in sorted(value):
            _flatten(f'{prefix}.{key}', value[key], out)
    elif value is not None:
        out[prefix] = torch.tensor(float(value))


def _predictions(prefix: str, samples, out: Dict[str, torch.Tensor]) -> None:
    for i, sample in enumerate(samples):
        pred = sample.pred_instances
        for key in ('bboxes', 'scores', 'labels'):
            out[f'{prefix}.{i}.{key}'] = pred[key].detach().clone()


def fingerprint(cfg_path: str) -> Dict[str, torch.Tensor]:
    """Every output of one quickstart model on :func:`fixed_batch`."""
    cfg = Config.fromfile(cfg_path)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    # Checkpoint keys and initial weights (one sum per state_dict entry).
    out: Dict[str, torch.Tensor] = {
        f'state_dict.{key}': value.double().sum()
        for key, value in model.state_dict().items()
    }
    batch = fixed_batch()
    model.eval()
    with torch.no_grad():
        data = model.data_preprocessor(copy.deepcopy(batch), False)
        _predictions('predict', model(**data, mode='predict'), out)
        data = model.data_preprocessor(copy.deepcopy(batch), False)
        _flatten('tensor', model(**data, mode='tensor'), out)
        data = model.data_preprocessor(copy.deepcopy(batch), False)
        target = model.extract_feat(data['inputs']['img'])
        query = model.extract_query_feat(data['inputs']['query'])
        _predictions('cached',
                     model.predict_with_feats(target, query,
                                              data['data_samples']), out)
    model.train()
    torch.manual_seed(1)
    data = model.data_preprocessor(copy.deepcopy(batch), True)
    losses = model(**data, mode='loss')
    _flatten('loss', losses, out)
    total = sum(v.sum() if isinstance(v, torch.Tensor) else sum(
        x.sum() for x in v) for k, v in losses.items() if 'loss' in k)
    total.backward()
    for name, module in model.named_children():
        grads = [p.grad.norm() for p in module.parameters()
                 if p.grad is not None]
        if grads:
            out[f'grad_norm.{name}'] = torch.stack(grads).norm().detach()
    return out


def record() -> Dict[str, Dict[str, torch.Tensor]]:
    register_all_modules(init_default_scope=True)
    return {osp.basename(p): fingerprint(p) for p in CONFIGS}


def compare(reference: Dict[str, Dict[str, torch.Tensor]],
            current: Dict[str, Dict[str, torch.Tensor]],
            atol: float) -> List[str]:
    """Lines describing every difference (empty when all agree)."""
    problems = []
    for name in sorted(set(reference) | set(current)):
        ref, cur = reference.get(name), current.get(name)
        if ref is None or cur is None:
            problems.append(f'{name}: only in the '
                            f'{"current" if ref is None else "reference"} run')
            continue
        worst = 0.0
        for key in sorted(set(ref) | set(cur)):
            a, b = ref.get(key), cur.get(key)
            if a is None or b is None or a.shape != b.shape:
                problems.append(f'{name} {key}: shape '
                                f'{None if a is None else tuple(a.shape)} vs '
                                f'{None if b is None else tuple(b.shape)}')
                continue
            diff = (a.double() - b.double()).abs().max().item() \
                if a.numel() else 0.0
            worst = max(worst, diff)
            if diff > atol:
                problems.append(f'{name} {key}: max |diff| {diff:.3g}')
        print(f'{name}: {len(ref)} outputs, max |diff| {worst:.3g}')
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('action', choices=['record', 'compare'])
    parser.add_argument('path', help='the recording (.pt)')
    parser.add_argument('--atol', type=float, default=1e-6)
    args = parser.parse_args()
    torch.set_num_threads(1)
    current = record()
    if args.action == 'record':
        torch.save(current, args.path)
        for name, outs in current.items():
            print(f'{name}: {len(outs)} outputs recorded')
        return 0
    problems = compare(torch.load(args.path), current, args.atol)
    for line in problems:
        print('DIFF', line)
    print('equal' if not problems else f'{len(problems)} differences')
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())

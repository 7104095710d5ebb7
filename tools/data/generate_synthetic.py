"""Generate the project's synthetic one-shot dataset (COCO format).

    python tools/data/generate_synthetic.py data/synthetic \
        [--mode shape] [--num-train 2000] [--num-val 300] \
        [--image-size 160] [--seed 0] [--train-classes seen|all]

--mode shape (default): 32 outline x pattern classes in random colours, so
colour carries no class information; --mode colour: the 64 colour x shape
classes (configs/_base_/datasets/synthetic-colour_oneshot.py expects them in
data/synthetic-colour). The train images of the shape mode hold seen
classes only (--train-classes seen, its default); --train-classes all draws
every class into them too, as the colour mode does by default.
"""
import argparse
import json
from collections import defaultdict
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))

from oneshot.datasets.synthetic import (MODES, TRAIN_CLASSES,  # noqa: E402
                                        generate_synthetic_dataset,
                                        synthetic_classes, synthetic_split)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    parser.add_argument('out_dir')
    parser.add_argument('--mode', choices=MODES, default='shape',
                        help='shape: colour carries no class information '
                        '(default); colour: class = shape x colour')
    parser.add_argument('--num-train', type=int, default=2000)
    parser.add_argument('--num-val', type=int, default=300)
    parser.add_argument('--image-size', type=int, default=160)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--train-classes', choices=TRAIN_CLASSES,
                        default=None,
                        help='seen: train images draw the seen classes only '
                        '(default in the shape mode); all: every class '
                        '(default in the colour mode)')
    parser.add_argument('--force', action='store_true',
                        help='regenerate even if the same data exist')
    args = parser.parse_args()
    t0 = time.time()
    paths = generate_synthetic_dataset(
        args.out_dir, num_train=args.num_train, num_val=args.num_val,
        image_size=args.image_size, seed=args.seed,
        skip_existing=not args.force, mode=args.mode,
        train_classes=args.train_classes)
    split = synthetic_split(args.mode)
    print(f'synthetic one-shot data ({args.mode} mode) in {args.out_dir} '
          f'({time.time() - t0:.1f} s): '
          f'{len(synthetic_classes(args.mode))} classes '
          f'({len(split["seen"])} seen, {len(split["unseen"])} unseen)')
    print(f'  unseen: {", ".join(split["unseen"])}')
    for name in ('train', 'val'):
        with open(paths[f'{name}_ann']) as f:
            data = json.load(f)
        imgs_per_class = defaultdict(set)
        for ann in data['annotations']:
            imgs_per_class[ann['category_id']].add(ann['image_id'])
        counts = [len(imgs_per_class[c['id']]) for c in data['categories']
                  if c['id'] in imgs_per_class]
        print(f'  {name}: {len(data["images"])} images, '
              f'{len(data["annotations"])} boxes of {len(counts)} classes, '
              f'images per class {min(counts, default=0)}-'
              f'{max(counts, default=0)} -> {paths[f"{name}_ann"]}')


if __name__ == '__main__':
    main()

"""Generate the project's glyph one-shot dataset (COCO format).

    python tools/data/generate_glyphs.py data/glyphs \
        [--num-train 4000] [--num-val 600] [--image-size 160] [--seed 0] \
        [--train-classes all|seen] [--force]

229 character classes (Latin, digits, signs, arrows, math operators and
geometric shapes seen; Greek, Cyrillic and miscellaneous symbols unseen)
drawn in matplotlib's bundled fonts with affine jitter, stroke noise and
random colours; configs/_base_/datasets/glyphs_oneshot.py expects them in
data/glyphs.
"""
import argparse
import json
import os.path as osp
import sys
import time
from collections import defaultdict

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))

from oneshot.datasets.glyphs import (BLOCKS,  # noqa: E402
                                     generate_glyph_dataset, glyph_classes,
                                     glyph_split)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    parser.add_argument('out_dir')
    parser.add_argument('--num-train', type=int, default=4000)
    parser.add_argument('--num-val', type=int, default=600)
    parser.add_argument('--image-size', type=int, default=160)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--train-classes', choices=('all', 'seen'),
                        default='all',
                        help='all (default): train images draw every class; '
                        'seen: the seen classes only')
    parser.add_argument('--force', action='store_true',
                        help='regenerate even if the same data exist')
    args = parser.parse_args()
    t0 = time.time()
    paths = generate_glyph_dataset(
        args.out_dir, num_train=args.num_train, num_val=args.num_val,
        image_size=args.image_size, seed=args.seed,
        skip_existing=not args.force, train_classes=args.train_classes)
    split = glyph_split()
    print(f'glyph one-shot data in {args.out_dir} '
          f'({time.time() - t0:.1f} s): {len(glyph_classes())} classes '
          f'({len(split["seen"])} seen, {len(split["unseen"])} unseen)')
    for unseen in (False, True):
        blocks = [f'{b.name} ({len(b.chars)})' for b in BLOCKS
                  if b.unseen == unseen]
        print(f'  {"unseen" if unseen else "seen"} blocks: '
              f'{", ".join(blocks)}')
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
              f'images per class '
              f'{min(counts)}-{max(counts)} -> {paths[f"{name}_ann"]}')
    print(f'  fonts: {", ".join(data["info"]["fonts"])}')


if __name__ == '__main__':
    main()

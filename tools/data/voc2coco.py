"""Convert PASCAL VOC 2007/2012 XML annotations to COCO json for one-shot
training and testing.

    python tools/data/voc2coco.py data/VOCdevkit data/voc/annotations

writes ``voc0712_trainval.json`` (VOC2007 + VOC2012 trainval) and
``voc07_test.json`` (VOC2007 test). Image ``file_name`` is relative to the
VOCdevkit folder (``VOC2007/JPEGImages/000001.jpg``), so configs use
``data_prefix=dict(img='VOCdevkit/')``. Boxes flagged ``difficult`` become
``iscrowd=1``: ignored in training ground truth and in evaluation, as the
VOC protocol ignores them. VOC pixel coordinates are 1-based inclusive;
like mmdet's VOC loader we subtract 1 from the minimum corner, giving
``x1 = xmin - 1, x2 = xmax`` in 0-based continuous coordinates.
"""
import argparse
import json
import os
import os.path as osp
import sys
import xml.etree.ElementTree as ET
from typing import Dict, List, Tuple

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))

from oneshot.datasets.splits import VOC_CLASSES  # noqa: E402

SETS = {
    'voc0712_trainval.json': [('VOC2007', 'trainval'),
                              ('VOC2012', 'trainval')],
    'voc07_test.json': [('VOC2007', 'test')],
}


def parse_xml(path: str) -> Tuple[int, int, List[dict]]:
    """(width, height, objects) of one VOC annotation file."""
    root = ET.parse(path).getroot()
    size = root.find('size')
    width = int(size.find('width').text)
    height = int(size.find('height').text)
    objects = []
    for obj in root.findall('object'):
        name = obj.find('name').text.strip()
        if name not in VOC_CLASSES:
            raise ValueError(f'{path}: unknown VOC class {name!r}')
        diff = obj.find('difficult')
        bnd = obj.find('bndbox')
        x1, y1, x2, y2 = (float(bnd.find(k).text)
                          for k in ('xmin', 'ymin', 'xmax', 'ymax'))
        objects.append(dict(
            name=name, difficult=int(diff.text) if diff is not None else 0,
            bbox=[x1 - 1, y1 - 1, x2, y2]))
    return width, height, objects


def convert(devkit: str, subsets: List[Tuple[str, str]]) -> Dict:
    """COCO dict for the listed (year folder, image set) pairs."""
    cat_id = {name: i + 1 for i, name in enumerate(VOC_CLASSES)}
    images, annotations = [], []
    for year, image_set in subsets:
        list_file = osp.join(devkit, year, 'ImageSets', 'Main',
                             f'{image_set}.txt')
        if not osp.isfile(list_file):
            raise FileNotFoundError(
                f'{list_file} not found: is {devkit!r} a VOCdevkit folder '
                f'with {year}?')
        with open(list_file) as f:
            names = [line.strip() for line in f if line.strip()]
        for name in names:
            width, height, objects = parse_xml(
                osp.join(devkit, year, 'Annotations', f'{name}.xml'))
            img_id = len(images) + 1
            images.append(dict(
                id=img_id, width=width, height=height,
                file_name=f'{year}/JPEGImages/{name}.jpg'))
            for obj in objects:
                x1, y1, x2, y2 = obj['bbox']
                annotations.append(dict(
                    id=len(annotations) + 1, image_id=img_id,
                    category_id=cat_id[obj['name']],
                    bbox=[x1, y1, x2 - x1, y2 - y1],
                    area=(x2 - x1) * (y2 - y1), iscrowd=obj['difficult']))
    return dict(images=images, annotations=annotations,
                categories=[dict(id=i, name=n) for n, i in cat_id.items()])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('devkit', help='the VOCdevkit folder')
    parser.add_argument('out_dir')
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    for out_name, subsets in SETS.items():
        present = [s for s in subsets
                   if osp.isdir(osp.join(args.devkit, s[0]))]
        if not present:
            print(f'skip {out_name}: none of {[s[0] for s in subsets]} '
                  f'in {args.devkit}')
            continue
        coco = convert(args.devkit, present)
        path = osp.join(args.out_dir, out_name)
        with open(path, 'w') as f:
            json.dump(coco, f)
        print(f'{path}: {len(coco["images"])} images, '
              f'{len(coco["annotations"])} boxes from {present}')


if __name__ == '__main__':
    main()

"""Shared fixtures.

``tiny_coco`` writes a tiny COCO-format one-shot dataset to a temporary
folder: six 96x96 images (one grayscale, one RGBA PNG) holding solid
rectangles of 6 classes ``c0`` .. ``c5``; class ``c5`` is unseen. It also
holds a crowd box (``c0`` in image 1) and a degenerate zero-width box
(``c1`` in image 2) that must never be used. Returned dict:

- ``root``: dataset root (images directly in it, ``ann.json`` beside them),
- ``ann_file``: path of the json,
- ``classes``: the 6 class names in json order,
- ``split``: ``dict(unseen=['c5'])``,
- ``boxes``: ``{img_id: [(class_name, [x1, y1, x2, y2], iscrowd), ...]}``
  of the valid boxes.
"""
import json
import os.path as osp

import cv2
import numpy as np
import pytest

CLASSES = ['c0', 'c1', 'c2', 'c3', 'c4', 'c5']
COLORS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0),
          (255, 0, 255), (0, 255, 255)]
# img_id -> [(class index, x, y, w, h, iscrowd)]
LAYOUT = {
    1: [(0, 5, 5, 30, 30, 0), (1, 50, 50, 30, 20, 0), (0, 40, 5, 20, 20, 1)],
    2: [(0, 10, 40, 25, 25, 0), (2, 50, 10, 30, 30, 0), (1, 5, 5, 0, 20, 0)],
    3: [(1, 10, 10, 25, 35, 0), (2, 50, 50, 35, 30, 0), (5, 60, 5, 25, 25, 0)],
    4: [(3, 5, 5, 40, 40, 0), (0, 55, 55, 30, 30, 0), (5, 5, 60, 25, 25, 0)],
    5: [(3, 50, 10, 35, 35, 0), (4, 10, 50, 30, 30, 0)],
    6: [(4, 40, 40, 40, 40, 0), (2, 5, 5, 20, 25, 0), (1, 60, 5, 25, 25, 0)],
}


def write_tiny_coco(root: str) -> dict:
    images, anns, boxes = [], [], {}
    ann_id = 100
    for img_id, objs in LAYOUT.items():
        img = np.full((96, 96, 3), 40, np.uint8)
        boxes[img_id] = []
        for cls, x, y, w, h, crowd in objs:
            if w > 0 and h > 0:
                cv2.rectangle(img, (x, y), (x + w - 1, y + h - 1),
                              COLORS[cls], -1)
                boxes[img_id].append((CLASSES[cls], [x, y, x + w, y + h],
                                      crowd))
            anns.append(dict(id=ann_id, image_id=img_id, category_id=cls + 1,
                             bbox=[x, y, w, h], area=w * h, iscrowd=crowd))
            ann_id += 1
        name = f'{img_id:03d}.png'
        if img_id == 5:  # grayscale file
            cv2.imwrite(osp.join(root, name),
                        cv2.cvtColor(img, cv2.COLOR_BGR2GRAY))
        elif img_id == 6:  # RGBA file
            cv2.imwrite(osp.join(root, name),
                        cv2.cvtColor(img, cv2.COLOR_BGR2BGRA))
        else:
            cv2.imwrite(osp.join(root, name), img)
        images.append(dict(id=img_id, file_name=name, width=96, height=96))
    cats = [dict(id=i + 1, name=n) for i, n in enumerate(CLASSES)]
    ann_file = osp.join(root, 'ann.json')
    with open(ann_file, 'w') as f:
        json.dump(dict(images=images, annotations=anns, categories=cats), f)
    return dict(root=root, ann_file=ann_file, classes=CLASSES,
                split=dict(unseen=['c5']), boxes=boxes)


@pytest.fixture(scope='session')
def tiny_coco(tmp_path_factory) -> dict:
    return write_tiny_coco(str(tmp_path_factory.mktemp('tiny_coco')))

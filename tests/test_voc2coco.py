"""VOC XML -> COCO json conversion on a tiny fake VOCdevkit."""
import json
import os
import subprocess
import sys

from quickstart_utils import REPO

XML = """<annotation><size><width>100</width><height>80</height></size>
<object><name>cat</name><difficult>0</difficult>
<bndbox><xmin>11</xmin><ymin>21</ymin><xmax>50</xmax><ymax>60</ymax></bndbox>
</object>
<object><name>dog</name><difficult>1</difficult>
<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>10</xmax><ymax>10</ymax></bndbox>
</object></annotation>"""


def test_voc2coco(tmp_path):
    devkit = tmp_path / 'VOCdevkit'
    for year, sets in (('VOC2007', ('trainval', 'test')),
                       ('VOC2012', ('trainval', ))):
        os.makedirs(devkit / year / 'Annotations')
        os.makedirs(devkit / year / 'ImageSets' / 'Main')
        for s in sets:
            name = f'{year}_{s}'
            (devkit / year / 'ImageSets' / 'Main' / f'{s}.txt').write_text(
                name + '\n')
            (devkit / year / 'Annotations' / f'{name}.xml').write_text(XML)
    out = tmp_path / 'ann'
    subprocess.run([sys.executable, 'tools/data/voc2coco.py', str(devkit),
                    str(out)], cwd=REPO, check=True)
    trainval = json.loads((out / 'voc0712_trainval.json').read_text())
    test = json.loads((out / 'voc07_test.json').read_text())
    assert len(trainval['images']) == 2 and len(test['images']) == 1
    assert test['images'][0]['file_name'] == \
        'VOC2007/JPEGImages/VOC2007_test.jpg'
    cat, dog = test['annotations']
    names = {c['id']: c['name'] for c in test['categories']}
    assert names[cat['category_id']] == 'cat'
    assert cat['bbox'] == [10.0, 20.0, 40.0, 40.0] and cat['iscrowd'] == 0
    assert names[dog['category_id']] == 'dog' and dog['iscrowd'] == 1
    assert len(test['categories']) == 20

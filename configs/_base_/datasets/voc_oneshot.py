# One-shot PASCAL VOC: train VOC07+12 trainval, test VOC07 test; unseen
# aeroplane, cat, cow, sheep. Convert the XML first:
#   python tools/data/voc2coco.py data/VOCdevkit data/voc/annotations
# Scored with COCOeval AP50 like COCO (difficult boxes are crowd = ignored).
_base_ = './coco_oneshot.py'

data_root = 'data/'
train_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        ann_file='voc/annotations/voc0712_trainval.json',
        data_prefix=dict(img='VOCdevkit/'),
        split='voc'))
val_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        ann_file='voc/annotations/voc07_test.json',
        data_prefix=dict(img='VOCdevkit/'),
        split='voc'))
test_dataloader = val_dataloader

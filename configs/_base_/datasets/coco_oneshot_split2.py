# One-shot COCO, split 2: class index k is unseen iff (k + 1) % 4 == 2.
_base_ = './coco_oneshot.py'

train_dataloader = dict(dataset=dict(split='coco_split2'))
val_dataloader = dict(dataset=dict(split='coco_split2'))
test_dataloader = val_dataloader

# One-shot COCO, split 3: class index k is unseen iff (k + 1) % 4 == 3.
_base_ = './coco_oneshot.py'

train_dataloader = dict(dataset=dict(split='coco_split3'))
val_dataloader = dict(dataset=dict(split='coco_split3'))
test_dataloader = val_dataloader

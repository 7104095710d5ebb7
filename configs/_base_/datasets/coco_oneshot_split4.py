# One-shot COCO, split 4: class index k is unseen iff (k + 1) % 4 == 0.
_base_ = './coco_oneshot.py'

train_dataloader = dict(dataset=dict(split='coco_split4'))
val_dataloader = dict(dataset=dict(split='coco_split4'))
test_dataloader = val_dataloader

# One-shot COCO, split 1: class index k is unseen iff (k + 1) % 4 == 1.
_base_ = './coco_oneshot.py'

train_dataloader = dict(dataset=dict(split='coco_split1'))
val_dataloader = dict(dataset=dict(split='coco_split1'))
test_dataloader = val_dataloader

# SaFT (one-stage: vertical + horizontal fusion, class-agnostic FCOS),
# ResNet-50-FPN,
# COCO split 3 (20 unseen classes), 8 GPUs x 2 episodes, 12 epochs.
# Same model, schedule and input sizes as split 1; only the split differs.
_base_ = './saft_r50-fpn_8xb2-12e_coco-split1.py'

train_dataloader = dict(dataset=dict(split='coco_split3'))
val_dataloader = dict(dataset=dict(split='coco_split3'))
test_dataloader = val_dataloader

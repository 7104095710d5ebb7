# BHRL, ResNet-50-FPN, COCO split 2 (20 unseen classes), 8 GPUs x 2
# episodes, 9 epochs. Same model, schedule and FPN input sizes as split 1;
# only the split differs.
_base_ = './bhrl_r50-fpn_8xb2-9e_coco-split1.py'

train_dataloader = dict(dataset=dict(split='coco_split2'))
val_dataloader = dict(dataset=dict(split='coco_split2'))
test_dataloader = val_dataloader

# AIT, ResNet-50-C4, COCO split 2 (20 unseen classes), 8 GPUs x 2 episodes,
# 12 epochs. C4 inputs from the dataset base: target short side 600 (max
# 1000), query 128x128.
_base_ = [
    '../_base_/models/ait_r50-c4.py',
    '../_base_/datasets/coco_oneshot_split2.py',
    '../_base_/schedules/schedule_sgd_12e.py', '../_base_/default_runtime.py'
]

# CoAE's schedule (AIT builds on CoAE's code; its own schedule is not
# recorded, docs/methods.md, "AIT"): SGD lr 0.01 (16 episodes per
# iteration), x0.1 every 4 epochs, after the base schedule's linear warm-up.
optim_wrapper = dict(optimizer=dict(lr=0.01))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True,
         milestones=[4, 8], gamma=0.1),
]

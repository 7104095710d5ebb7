# CAT, ResNet-50-C4, PASCAL VOC (unseen: aeroplane, cat, cow, sheep),
# 8 GPUs x 2 episodes, 12 epochs. C4 inputs from the dataset base.
_base_ = [
    '../_base_/models/cat_r50-c4.py', '../_base_/datasets/voc_oneshot.py',
    '../_base_/schedules/schedule_sgd_12e.py', '../_base_/default_runtime.py'
]

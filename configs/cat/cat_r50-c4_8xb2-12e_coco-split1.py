# CAT, ResNet-50-C4, COCO split 1 (20 unseen classes), 8 GPUs x 2 episodes,
# 12 epochs. C4 inputs from the dataset base: target short side 600 (max
# 1000), query 128x128.
_base_ = [
    '../_base_/models/cat_r50-c4.py',
    '../_base_/datasets/coco_oneshot_split1.py',
    '../_base_/schedules/schedule_sgd_12e.py', '../_base_/default_runtime.py'
]

# BHRL, ResNet-50-FPN, COCO split 1 (20 unseen classes), 8 GPUs x 2
# episodes (16 images per iteration), 9 epochs.
_base_ = [
    '../_base_/models/bhrl_r50-fpn.py',
    '../_base_/datasets/coco_oneshot_split1.py',
    '../_base_/schedules/schedule_sgd_12e.py', '../_base_/default_runtime.py'
]

# BHRL schedule: SGD lr 0.02 for 16 images, momentum 0.9, weight decay 1e-4
# (from the schedule base), 500 linear warm-up iterations, 9 epochs with
# the learning rate divided by 10 after epoch 6.
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=9, val_interval=1)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=500),
    dict(type='MultiStepLR', begin=0, end=9, by_epoch=True, milestones=[6],
         gamma=0.1),
]

# FPN input sizes (docs/protocol.md, "Input sizes"; BHRL / Siamese Mask
# R-CNN): target resized into 1024x1024 keeping its ratio and padded to
# 1024x1024, queries 192x192; every other step of the dataset base's
# pipelines kept (oneshot.utils.pipelines.with_input_sizes).
from oneshot.utils.pipelines import with_input_sizes  # noqa: E402

target_scale = (1024, 1024)
query_size = 192
train_pipeline = with_input_sizes(_base_.train_pipeline, target_scale,
                                  query_size)
test_pipeline = with_input_sizes(_base_.test_pipeline, target_scale,
                                 query_size)
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))

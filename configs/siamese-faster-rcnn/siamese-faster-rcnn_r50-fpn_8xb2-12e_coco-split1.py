# Siamese Faster R-CNN (L1-difference matcher), ResNet-50-FPN,
# COCO split 1 (20 unseen classes), 8 GPUs x 2 episodes, 12 epochs.
_base_ = [
    '../_base_/models/siamese-faster-rcnn_r50-fpn.py',
    '../_base_/datasets/coco_oneshot_split1.py',
    '../_base_/schedules/schedule_sgd_12e.py', '../_base_/default_runtime.py'
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

# Siamese Faster R-CNN (L1-difference matcher), ResNet-50-FPN,
# COCO split 1 (20 unseen classes), 8 GPUs x 2 episodes, 12 epochs.
_base_ = [
    '../_base_/models/siamese-faster-rcnn_r50-fpn.py',
    '../_base_/datasets/coco_oneshot_split1.py',
    '../_base_/schedules/schedule_sgd_12e.py', '../_base_/default_runtime.py'
]

# FPN input sizes (docs/protocol.md, "Input sizes"; BHRL / Siamese Mask
# R-CNN): the dataset base is written for C4 methods (target short side 600,
# query 128). Here the target is resized into 1024x1024 keeping its ratio and
# padded to 1024x1024 (after flipping, so padding stays bottom-right), and
# queries are 192x192. Every other step of the dataset's pipelines is kept as
# is.
target_scale = (1024, 1024)
query_size = 192
train_pipeline = [
    step for t in _base_.train_pipeline for step in (
        [dict(t, scale=target_scale, keep_ratio=True)] if t.type == 'Resize'
        else [dict(t, size=query_size)] if t.type == 'ResizeQueryPatches'
        else [dict(type='Pad', size=target_scale), t]
        if t.type == 'PackOneShotInputs' else [t])
]
test_pipeline = [
    step for t in _base_.test_pipeline for step in (
        [dict(t, scale=target_scale, keep_ratio=True)] if t.type == 'Resize'
        else [dict(t, size=query_size)] if t.type == 'ResizeQueryPatches'
        else [dict(type='Pad', size=target_scale), t]
        if t.type == 'PackOneShotInputs' else [t])
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))

# Quickstart: the tiny Siamese Faster R-CNN (L1-difference matcher) trained
# from scratch on the project's synthetic one-shot data, on CPU, in minutes.
#   python tools/data/generate_synthetic.py data/synthetic
#   python tools/train.py configs/quickstart/siamese-faster-rcnn_r18-tiny_synthetic.py
# Not a paper setting: see configs/cat_r50.py and configs/siamese-faster-rcnn_r50.py.
_base_ = [
    '../_base_/models/siamese-faster-rcnn_r18-tiny.py',
    '../_base_/datasets/synthetic_oneshot.py',
    '../_base_/default_runtime.py',
]

max_iters = 2000
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters,
    val_interval=max_iters)
val_cfg = dict(type='ValLoop')

train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteEpisodeSampler', shuffle=True),
    batch_sampler=None)

# The test set holds episodes of every class: AP50 of one class depends only
# on that class's episodes, so one pass reports the seen and the unseen mean.
val_dataloader = dict(dataset=dict(episode_classes='all'))
test_dataloader = val_dataloader

param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=100),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters,
         milestones=[int(max_iters * 0.75)], gamma=0.1),
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.04, momentum=0.9, weight_decay=1e-4),
    clip_grad=dict(max_norm=10, norm_type=2))

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', by_epoch=False,
                    interval=max_iters, max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)

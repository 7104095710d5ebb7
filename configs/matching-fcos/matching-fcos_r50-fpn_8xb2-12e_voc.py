# Matching-FCOS (one-stage: query-conditioned class-agnostic FCOS),
# ResNet-50-FPN,
# PASCAL VOC (unseen: aeroplane, cat, cow, sheep), 8 GPUs x 2 episodes,
# 12 epochs.
_base_ = [
    '../_base_/models/matching-fcos_r50-fpn.py',
    '../_base_/datasets/voc_oneshot.py',
    '../_base_/schedules/schedule_sgd_12e.py', '../_base_/default_runtime.py'
]

# Inputs: the target keeps the dataset base's size (short side 600, max
# 1000); queries are 200x200 (docs/methods.md, "Matching-FCOS": the paper
# uses query short side 200; the pipeline makes every query a padded square
# so that a batch stacks, so 200 is its longer side here). Every other
# pipeline step is the dataset base's.
from oneshot.utils.pipelines import with_input_sizes  # noqa: E402

query_size = 200
train_pipeline = with_input_sizes(_base_.train_pipeline, None, query_size)
test_pipeline = with_input_sizes(_base_.test_pipeline, None, query_size)
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))

# FCOS's optimisation (mmdet's FCOS configs): lr 0.01 for 16 images, double
# lr and no weight decay on biases, gradient clipping at 35.
optim_wrapper = dict(
    optimizer=dict(lr=0.01),
    paramwise_cfg=dict(bias_lr_mult=2., bias_decay_mult=0.),
    clip_grad=dict(max_norm=35, norm_type=2))

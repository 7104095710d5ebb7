# The project's synthetic one-shot data (tools/data/generate_synthetic.py),
# shape mode: 160x160 images, 32 classes (8 outlines x 4 inner patterns),
# every object in a random colour, so colour carries no class information;
# 8 unseen classes that are new outline/pattern combinations, drawn into
# the val images only (the train images hold the 24 seen classes; see
# docs/protocol.md). Train on seen-class episodes; val/test on unseen
# classes (episode_classes='seen' or 'all' to change that). The colour x shape data of earlier versions:
# synthetic-colour_oneshot.py.
dataset_type = 'OneShotCocoDataset'
data_root = 'data/synthetic/'
image_size = 160
# Queries at about the size of the target's objects (20-53 px), so that one
# FPN level sees the query and its matches at the same scale: 40 px gave
# the Siamese quickstart model +17.2 AP50 of matching gain against +11.4
# with 64 px queries (2000 iterations, shape mode).
query_size = 40

# The names are those of oneshot.datasets.synthetic.synthetic_split('shape')
# (tests/test_synthetic.py checks they agree).
seen_classes = [
    'circle-outline', 'circle-halved', 'circle-dotted',
    'square-solid', 'square-outline', 'square-halved',
    'triangle-solid', 'triangle-outline', 'triangle-dotted',
    'diamond-solid', 'diamond-halved', 'diamond-dotted',
    'star-outline', 'star-halved', 'star-dotted',
    'cross-solid', 'cross-outline', 'cross-halved',
    'hexagon-solid', 'hexagon-outline', 'hexagon-dotted',
    'arrow-solid', 'arrow-halved', 'arrow-dotted',
]
unseen_classes = [
    'circle-solid', 'square-dotted', 'triangle-halved', 'diamond-outline',
    'star-solid', 'cross-dotted', 'hexagon-halved', 'arrow-outline',
]
split = dict(seen=seen_classes, unseen=unseen_classes)
# What a class is easily taken for: the classes sharing its outline or its
# pattern (each image holds such a pair in one colour). Used only by
# negative training episodes (negative_prob > 0), which then draw their
# query among the target's absent look-alikes.
look_alikes = {
    c: [d for d in seen_classes + unseen_classes
        if d != c and (d.split('-')[0] == c.split('-')[0]
                       or d.split('-')[1] == c.split('-')[1])]
    for c in seen_classes + unseen_classes}

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(image_size, image_size), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='LoadQueryPatches'),
    dict(type='ResizeQueryPatches', size=query_size, flip_prob=0.5),
    dict(type='PackOneShotInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(image_size, image_size), keep_ratio=True),
    # Ground truth is loaded after Resize: boxes stay in original pixels,
    # where predictions are rescaled back to.
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='LoadQueryPatches'),
    dict(type='ResizeQueryPatches', size=query_size),
    dict(type='PackOneShotInputs'),
]

train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    # (idx, draw seed) pairs: each epoch draws new episodes, deterministically.
    sampler=dict(type='EpisodeSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/train.json',
        data_prefix=dict(img='train/'),
        split=split,
        episode_classes='seen',
        query_min_size=8,
        look_alikes=look_alikes,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    # All episodes of one image in one batch: one backbone pass per image.
    sampler=dict(type='ImageGroupedSampler'),
    batch_sampler=dict(type='SameImageBatchSampler'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/val.json',
        data_prefix=dict(img='val/'),
        split=split,
        episode_classes='unseen',  # 'seen' or 'all' to evaluate others
        query_min_size=8,
        # Also 10 targets per class that lack it: false alarms per negative
        # target and AP50 over positive + negative targets are reported
        # next to the papers' AP50, which ignores them.
        num_negatives=10,
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader

val_evaluator = dict(type='OneShotMetric')
test_evaluator = val_evaluator

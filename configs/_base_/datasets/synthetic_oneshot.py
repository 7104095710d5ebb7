# The project's synthetic one-shot data (tools/data/generate_synthetic.py):
# 160x160 images, 64 classes (8 shapes x 8 colours), 16 unseen classes that
# are new shape/colour combinations. Train on seen-class episodes; val/test
# on unseen classes (episode_classes='seen' or 'all' to change that).
dataset_type = 'OneShotCocoDataset'
data_root = 'data/synthetic/'
image_size = 160
query_size = 64

# The names are those of oneshot.datasets.synthetic.synthetic_split() (one
# or two lines per shape; tests/test_synthetic.py checks they agree).
seen_classes = [
    'green-circle', 'blue-circle', 'yellow-circle',
    'cyan-circle', 'orange-circle', 'purple-circle',
    'red-square', 'green-square', 'blue-square',
    'magenta-square', 'cyan-square', 'orange-square',
    'red-triangle', 'green-triangle', 'yellow-triangle',
    'magenta-triangle', 'cyan-triangle', 'purple-triangle',
    'red-diamond', 'blue-diamond', 'yellow-diamond',
    'magenta-diamond', 'orange-diamond', 'purple-diamond',
    'green-star', 'blue-star', 'yellow-star',
    'cyan-star', 'orange-star', 'purple-star',
    'red-cross', 'green-cross', 'blue-cross',
    'magenta-cross', 'cyan-cross', 'orange-cross',
    'red-ring', 'green-ring', 'yellow-ring',
    'magenta-ring', 'cyan-ring', 'purple-ring',
    'red-hexagon', 'blue-hexagon', 'yellow-hexagon',
    'magenta-hexagon', 'orange-hexagon', 'purple-hexagon',
]
unseen_classes = [
    'red-circle', 'magenta-circle',
    'yellow-square', 'purple-square',
    'blue-triangle', 'orange-triangle',
    'green-diamond', 'cyan-diamond',
    'red-star', 'magenta-star',
    'yellow-cross', 'purple-cross',
    'blue-ring', 'orange-ring',
    'green-hexagon', 'cyan-hexagon',
]
split = dict(seen=seen_classes, unseen=unseen_classes)

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
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader

val_evaluator = dict(type='OneShotMetric')
test_evaluator = val_evaluator

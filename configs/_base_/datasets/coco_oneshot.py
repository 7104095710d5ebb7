# One-shot COCO (train2017 -> val2017), CoAE protocol (docs/protocol.md).
# C4-method input sizes: target short side 600 (max 1000), query 128x128
# zero-padded to a centred square, flipped with p=0.5 in training. FPN methods
# override `train_pipeline` / `test_pipeline` (target 1024, query 192).
# The split is chosen by the coco_oneshot_split{1,2,3,4}.py bases.
dataset_type = 'OneShotCocoDataset'
data_root = 'data/coco/'
split = 'coco_split1'
query_size = 128
backend_args = None

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(1000, 600), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='LoadQueryPatches', backend_args=backend_args),
    dict(type='ResizeQueryPatches', size=query_size, center=True,
         flip_prob=0.5),
    dict(type='PackOneShotInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=(1000, 600), keep_ratio=True),
    # Ground truth is loaded after Resize: boxes stay in original pixels,
    # where predictions are rescaled back to.
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='LoadQueryPatches', backend_args=backend_args),
    dict(type='ResizeQueryPatches', size=query_size, center=True),
    dict(type='PackOneShotInputs'),
]

train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    # (idx, draw seed) pairs: each epoch draws new episodes, deterministically.
    sampler=dict(type='EpisodeSampler', shuffle=True),
    # mmdet's AspectRatioBatchSampler's batches, with the sizes read by
    # get_img_size: mmdet's reads them from get_data_info, which draws a
    # whole episode per index (oneshot/datasets/samplers.py).
    batch_sampler=dict(type='EpisodeAspectRatioBatchSampler'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='train2017/'),
        split=split,
        episode_classes='seen',
        class_sampling='uniform',
        pipeline=train_pipeline,
        backend_args=backend_args))
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
        ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/'),
        split=split,
        episode_classes='unseen',  # 'seen' to evaluate the seen classes
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader

val_evaluator = dict(type='OneShotMetric')
test_evaluator = val_evaluator

# Quickstart with CoAE's co-attention/co-excitation matcher, query-aware RoI
# head and margin ranking loss (same tiny backbone, data and schedule as the
# Siamese quickstart, so the two are comparable):
#   python tools/train.py configs/quickstart/coae_r18-tiny_synthetic.py
# The tiny model has no ResNet layer4 to serve as the RoI head's shared
# head; one 3x3 conv (64 -> 128, GroupNorm, ReLU) plays its part for both
# the RoIs and the query, then global average pooling as in CoAE. GroupNorm
# in the matcher too, for the reason given in the tiny model's base config.
_base_ = './siamese-faster-rcnn_r18-tiny_synthetic.py'

tiny_channels = 64
head_channels = 128
model = dict(
    # Measured on the synthetic data with mmdet's random sampler (the
    # README's row), kept here; the *_glyphs-pretrained configs use OHEM
    # (train_cfg.rcnn.sampler.type='OHEMSampler'), as the Siamese one does.
    train_cfg=dict(rcnn=dict(sampler=dict(type='RandomSampler'))),
    matcher=dict(
        _delete_=True,
        type='CoAttentionMatcher',
        in_channels=tiny_channels,
        inter_channels=tiny_channels // 2,
        reduction=16,
        norm_cfg=dict(type='GN', num_groups=8)),
    roi_head=dict(
        type='CoAERoIHead',
        query_level=0,
        shared_head=dict(
            type='ConvModule',
            in_channels=tiny_channels,
            out_channels=head_channels,
            kernel_size=3,
            padding=1,
            norm_cfg=dict(type='GN', num_groups=8)),
        bbox_head=dict(
            _delete_=True,
            type='CoAEBBoxHead',
            in_channels=head_channels,
            query_channels=head_channels,
            cls_hidden_channels=8,
            roi_feat_size=7,
            num_classes=1,
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                target_means=[0., 0., 0., 0.],
                target_stds=[0.1, 0.1, 0.2, 0.2]),
            reg_class_agnostic=True,
            loss_cls=dict(
                type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0),
            loss_rank=dict(
                type='MarginRankingLoss', margin=0.3, loss_weight=3.0))))

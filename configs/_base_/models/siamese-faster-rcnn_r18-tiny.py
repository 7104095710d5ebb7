# A deliberately tiny Siamese Faster R-CNN for the CPU quickstart and tests:
# ResNet-18 with 16 base channels (about 0.7 M backbone parameters instead of
# 11 M), a 3-level FPN at strides 8/16/32, trained from scratch. It is sized
# for ~128-192 px target images holding 12-60 px objects and ~64 px queries.
# Knobs a quickstart config usually changes:
#   backbone.base_channels   width of the whole network (16 -> stages 16..128)
#   neck.out_channels        channels of every FPN level (and of the matcher,
#                            RPN and RoI extractor, which must agree)
#   rpn_head.anchor_generator.scales  anchor side = scale * stride, i.e.
#                            16/32/64 px with scales=[2] at strides 8/16/32
#   matcher                  L1DiffMatcher by default; for a CAT variant:
#       model = dict(matcher=dict(_delete_=True,
#                                 type='CrossAttentionMatcher',
#                                 in_channels=64, embed_dims=32, num_heads=4,
#                                 feedforward_channels=64, num_layers=1))
#   train_cfg / test_cfg     proposal counts are small to keep CPU runs fast
# Not a paper model: see siamese-faster-rcnn_r50-{c4,fpn}.py for those.
tiny_channels = 64
model = dict(
    type='SiameseTwoStageDetector',
    data_preprocessor=dict(
        type='OneShotDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32),
    backbone=dict(
        type='ResNet',
        depth=18,
        base_channels=16,
        num_stages=4,
        out_indices=(1, 2, 3),
        frozen_stages=-1,
        # GroupNorm, not BatchNorm: trained from scratch, the shared backbone
        # sees two very different batches (whole targets, query crops). BN
        # normalises each with its own batch statistics in training but with
        # one blended running average at test time, which shifts target and
        # query features differently and breaks their comparison: a BN
        # version fit its training episodes (RoI acc 99.6 %) yet scored AP50
        # 0.33 on the same images, the GN version 1.0 (tests/test_overfit.py).
        norm_cfg=dict(type='GN', num_groups=8, requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=None),
    neck=dict(
        type='FPN',
        in_channels=[32, 64, 128],
        out_channels=tiny_channels,
        num_outs=3),
    matcher=dict(
        type='L1DiffMatcher',
        in_channels=tiny_channels,
        out_channels=tiny_channels,
        shared=True),
    query_fusion='mean',
    rpn_head=dict(
        type='RPNHead',
        in_channels=tiny_channels,
        feat_channels=tiny_channels,
        anchor_generator=dict(
            type='AnchorGenerator',
            scales=[2],
            ratios=[0.5, 1.0, 2.0],
            strides=[8, 16, 32]),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[.0, .0, .0, .0],
            target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(
            type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
    roi_head=dict(
        type='StandardRoIHead',
        bbox_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
            out_channels=tiny_channels,
            featmap_strides=[8, 16, 32]),
        bbox_head=dict(
            type='Shared2FCBBoxHead',
            in_channels=tiny_channels,
            fc_out_channels=256,
            roi_feat_size=7,
            num_classes=1,
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                target_means=[0., 0., 0., 0.],
                target_stds=[0.1, 0.1, 0.2, 0.2]),
            reg_class_agnostic=True,
            loss_cls=dict(
                type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0))),
    train_cfg=dict(
        rpn=dict(
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=0.7,
                neg_iou_thr=0.3,
                min_pos_iou=0.3,
                match_low_quality=True,
                ignore_iof_thr=-1),
            sampler=dict(
                type='RandomSampler',
                num=128,
                pos_fraction=0.5,
                neg_pos_ub=-1,
                add_gt_as_proposals=False),
            allowed_border=-1,
            pos_weight=-1,
            debug=False),
        rpn_proposal=dict(
            nms_pre=500,
            max_per_img=200,
            nms=dict(type='nms', iou_threshold=0.7),
            min_bbox_size=0),
        rcnn=dict(
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=0.5,
                neg_iou_thr=0.5,
                min_pos_iou=0.5,
                match_low_quality=False,
                ignore_iof_thr=-1),
            sampler=dict(
                type='RandomSampler',
                num=64,
                pos_fraction=0.25,
                neg_pos_ub=-1,
                add_gt_as_proposals=True),
            pos_weight=-1,
            debug=False)),
    test_cfg=dict(
        rpn=dict(
            nms_pre=300,
            max_per_img=100,
            nms=dict(type='nms', iou_threshold=0.7),
            min_bbox_size=0),
        rcnn=dict(
            score_thr=0.05,
            nms=dict(type='nms', iou_threshold=0.5),
            max_per_img=100)))

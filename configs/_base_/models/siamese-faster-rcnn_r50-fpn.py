# Siamese Faster R-CNN, ResNet-50-FPN (Siamese Mask R-CNN's box branch; the
# image level of BHRL). Backbone + FPN (P2-P6, 256 channels) shared by
# targets and queries; per level the L1-difference matcher
# conv1x1(cat(P, |P - GAP(Q)|)) gives 384 channels on which the RPN and the
# RoI head run (docs/methods.md, "Siamese Faster R-CNN baseline").
# BHRL-like settings: one anchor scale (8), three ratios, strides 4-64; RPN
# 2000/1000 (train) 1000/1000 (test); 512 RoIs/img, 25 % positives, gt added
# as proposals; score thr 0.05, NMS 0.5, 100 detections. Inputs: target
# 1024x1024 (keep ratio, padded), query 192x192 (set in the method configs'
# pipelines).
#
# !!! Backbone weights. `torchvision://resnet50` is the full-ImageNet
# ResNet-50: its training classes overlap COCO's, so unseen-class AP is
# inflated (docs/protocol.md, "Backbone pre-training"). The papers start from
# a ResNet-50 trained on ImageNet with COCO-related classes removed. For
# comparable numbers set
#   model = dict(backbone=dict(init_cfg=dict(
#       checkpoint='work_dirs/r50_no_coco.pth')))
pretrained = 'torchvision://resnet50'
fused_channels = 384
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
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(
        type='FPN',
        in_channels=[256, 512, 1024, 2048],
        out_channels=256,
        num_outs=5),
    matcher=dict(
        type='L1DiffMatcher',
        in_channels=256,
        out_channels=fused_channels,
        shared=True),
    query_fusion='mean',
    rpn_head=dict(
        type='RPNHead',
        in_channels=fused_channels,
        feat_channels=256,
        anchor_generator=dict(
            type='AnchorGenerator',
            scales=[8],
            ratios=[0.5, 1.0, 2.0],
            strides=[4, 8, 16, 32, 64]),
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
            out_channels=fused_channels,
            featmap_strides=[4, 8, 16, 32]),
        bbox_head=dict(
            type='Shared2FCBBoxHead',
            in_channels=fused_channels,
            fc_out_channels=1024,
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
                num=256,
                pos_fraction=0.5,
                neg_pos_ub=-1,
                add_gt_as_proposals=False),
            allowed_border=-1,
            pos_weight=-1,
            debug=False),
        rpn_proposal=dict(
            nms_pre=2000,
            max_per_img=1000,
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
                num=512,
                pos_fraction=0.25,
                neg_pos_ub=-1,
                add_gt_as_proposals=True),
            pos_weight=-1,
            debug=False)),
    test_cfg=dict(
        rpn=dict(
            nms_pre=1000,
            max_per_img=1000,
            nms=dict(type='nms', iou_threshold=0.7),
            min_bbox_size=0),
        rcnn=dict(
            score_thr=0.05,
            nms=dict(type='nms', iou_threshold=0.5),
            max_per_img=100)))

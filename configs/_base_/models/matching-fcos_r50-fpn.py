# Matching-FCOS (Li et al., "One-shot object detection without fine-tuning",
# arXiv 2005.03819), one-stage: ResNet-50-FPN P3-P7 (256 channels, FCOS's
# neck) shared by targets and queries; per level a matcher conditions the
# target map on the query and a class-agnostic FCOS head detects "the query's
# class" on the matched maps (docs/methods.md, "Matching-FCOS").
#
# Matcher: the paper's matching operator is not among the facts we hold, so
# the Siamese L1 difference conv1x1(cat(P, |P - GAP(Q)|)) is used (any
# registered matcher fits; heads take `fused_channels` input channels). Its
# output is 256 channels, the width FCOS's head was designed for.
# FCOS settings: the "improved" FCOS of mmdet
# (fcos_r50-caffe_fpn_gn-head-center-normbbox-centeronreg-giou): centre
# sampling (radius 1.5), GIoU box loss, centre-ness on the regression branch,
# regression normalised by stride, focal classification loss, GN head;
# regress ranges and strides 8-128 as in FCOS. Test: 1000 points per level
# before NMS, score thr 0.05, NMS 0.5, 100 detections.
# Inputs (method configs): target short side 600 (max 1000) from the dataset
# base, query 200 (the paper's "query short side 200"; docs/methods.md,
# "Matching-FCOS").
#
# !!! Backbone weights: `torchvision://resnet50` is the full-ImageNet
# ResNet-50 and leaks unseen COCO classes (docs/protocol.md, "Backbone
# pre-training"). For comparable numbers point backbone.init_cfg.checkpoint
# at a COCO-free ResNet-50.
pretrained = 'torchvision://resnet50'
fused_channels = 256
model = dict(
    type='SiameseSingleStageDetector',
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
        out_indices=(1, 2, 3),  # C3-C5: FCOS's FPN starts at P3
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(
        type='FPN',
        in_channels=[512, 1024, 2048],
        out_channels=256,
        add_extra_convs='on_output',  # P6, P7 from P5
        num_outs=5,
        relu_before_extra_convs=True),
    matcher=dict(
        type='L1DiffMatcher',
        in_channels=256,
        out_channels=fused_channels,
        shared=True),
    query_fusion='mean',
    bbox_head=dict(
        type='MatchingFCOSHead',
        num_classes=1,
        in_channels=fused_channels,
        stacked_convs=4,
        feat_channels=256,
        strides=[8, 16, 32, 64, 128],
        regress_ranges=((-1, 64), (64, 128), (128, 256), (256, 512),
                        (512, 1e8)),
        center_sampling=True,
        center_sample_radius=1.5,
        norm_on_bbox=True,
        centerness_on_reg=True,
        conv_bias=True,
        norm_cfg=dict(type='GN', num_groups=32, requires_grad=True),
        loss_cls=dict(
            type='FocalLoss',
            use_sigmoid=True,
            gamma=2.0,
            alpha=0.25,
            loss_weight=1.0),
        loss_bbox=dict(type='GIoULoss', loss_weight=1.0),
        loss_centerness=dict(
            type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(
        nms_pre=1000,
        min_bbox_size=0,
        score_thr=0.05,
        nms=dict(type='nms', iou_threshold=0.5),
        max_per_img=100))

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
_base_ = './siamese-faster-rcnn.py'

pretrained = 'torchvision://resnet50'
fused_channels = 384
model = dict(
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
    rpn_head=dict(
        in_channels=fused_channels,
        feat_channels=256,
        anchor_generator=dict(scales=[8], strides=[4, 8, 16, 32, 64])),
    roi_head=dict(
        bbox_roi_extractor=dict(
            out_channels=fused_channels, featmap_strides=[4, 8, 16, 32]),
        bbox_head=dict(in_channels=fused_channels, fc_out_channels=1024)),
    train_cfg=dict(
        rpn=dict(sampler=dict(num=256)),
        rpn_proposal=dict(nms_pre=2000, max_per_img=1000),
        rcnn=dict(sampler=dict(num=512))),
    test_cfg=dict(
        rpn=dict(nms_pre=1000, max_per_img=1000),
        rcnn=dict(nms=dict(type='nms', iou_threshold=0.5))))

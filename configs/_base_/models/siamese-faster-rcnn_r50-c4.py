# Siamese Faster R-CNN, ResNet-50-C4 (the CoAE / AIT / CAT detector).
# conv1-layer3 (stride 16, 1024 channels) is shared by targets and queries;
# a matcher conditions the target map on the query; the RPN and the RoI head
# (layer4 as a shared head + global average pooling) are class-agnostic.
# Settings follow CoAE/CAT (docs/methods.md, "CoAE"): anchors scales 4,8,16,32
# ratios 0.5,1,2; RPN 12000/2000 (train) 6000/300 (test); RoIAlign 7x7 (CoAE;
# CAT and AIT change only the matcher, so they keep CoAE's RoI size, and
# mmdet's C4 default of 14x14 would cost about 4x the layer4 FLOPs per RoI);
# 128 RoIs/img, 25 % positives; test NMS 0.3, 100 detections. Method configs
# replace `matcher`.
#
# !!! Backbone weights. `torchvision://resnet50` is the full-ImageNet
# ResNet-50: its training classes overlap COCO's, so unseen-class AP is
# inflated (docs/protocol.md, "Backbone pre-training"). The papers start from
# a ResNet-50 trained on ImageNet with COCO-related classes removed (725
# classes). For comparable numbers, point BOTH `init_cfg.checkpoint` entries
# below (backbone and roi_head.shared_head) at such a checkpoint, e.g.
#   model = dict(
#       backbone=dict(init_cfg=dict(checkpoint='work_dirs/r50_no_coco.pth')),
#       roi_head=dict(shared_head=dict(
#           init_cfg=dict(checkpoint='work_dirs/r50_no_coco.pth'))))
_base_ = './siamese-faster-rcnn.py'

pretrained = 'torchvision://resnet50'
norm_cfg = dict(type='BN', requires_grad=False)
model = dict(
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=3,
        strides=(1, 2, 2),
        dilations=(1, 1, 1),
        out_indices=(2, ),
        frozen_stages=1,
        norm_cfg=norm_cfg,
        norm_eval=True,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    # Default matcher: Siamese L1 difference kept at 1024 channels so that
    # layer4 (the RoI head) receives what it was pre-trained on.
    matcher=dict(
        type='L1DiffMatcher', in_channels=1024, out_channels=1024),
    rpn_head=dict(
        in_channels=1024,
        feat_channels=1024,
        anchor_generator=dict(scales=[4, 8, 16, 32], strides=[16])),
    roi_head=dict(
        shared_head=dict(
            type='ResLayer',
            depth=50,
            stage=3,
            stride=2,
            dilation=1,
            style='pytorch',
            norm_cfg=norm_cfg,
            norm_eval=True,
            init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
        bbox_roi_extractor=dict(out_channels=1024, featmap_strides=[16]),
        bbox_head=dict(
            type='BBoxHead',
            with_avg_pool=True,
            roi_feat_size=4,  # 7x7 RoIs after layer4 (stride 2)
            in_channels=2048)),
    train_cfg=dict(
        rpn=dict(sampler=dict(num=256)),
        rpn_proposal=dict(nms_pre=12000, max_per_img=2000),
        rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(
        rpn=dict(nms_pre=6000, max_per_img=300),
        rcnn=dict(nms=dict(type='nms', iou_threshold=0.3))))

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
_base_ = './siamese-faster-rcnn.py'

tiny_channels = 64
model = dict(
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
    rpn_head=dict(
        in_channels=tiny_channels,
        feat_channels=tiny_channels,
        anchor_generator=dict(scales=[2], strides=[8, 16, 32])),
    roi_head=dict(
        bbox_roi_extractor=dict(
            out_channels=tiny_channels, featmap_strides=[8, 16, 32]),
        bbox_head=dict(in_channels=tiny_channels, fc_out_channels=256)),
    # Proposal and RoI counts are small to keep CPU runs fast.
    train_cfg=dict(
        rpn=dict(sampler=dict(num=128)),
        rpn_proposal=dict(nms_pre=500, max_per_img=200),
        rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(
        rpn=dict(nms_pre=300, max_per_img=100),
        rcnn=dict(nms=dict(type='nms', iou_threshold=0.5))))

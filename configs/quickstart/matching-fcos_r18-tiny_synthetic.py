# Quickstart: a tiny one-stage Matching-FCOS (query-conditioned class-agnostic
# FCOS) trained from scratch on the synthetic one-shot data, on CPU:
#   python tools/data/generate_synthetic.py data/synthetic
#   python tools/train.py configs/quickstart/matching-fcos_r18-tiny_synthetic.py
# Same data, schedule, backbone, FPN and matcher as the Siamese quickstart
# (inherited), so the two are comparable; only the detector and head change.
# Not a paper setting: see configs/matching-fcos_r50.py.
#
# FCOS adapted to the tiny pyramid: 3 levels of 64 channels at strides
# 8/16/32 (not P3-P7 at 8-128) and ~160 px images with 12-60 px objects.
# Regress ranges are 4x the stride (P3 up to 32 px from a point to a box
# side, i.e. objects up to ~64 px, P4 32-64, P5 beyond), so every level
# gets objects; FCOS's own ranges (8x stride, 64 at P3) would put every
# synthetic object on P3. Two 64-channel head convs with GN (8 groups).
_base_ = './siamese-faster-rcnn_r18-tiny_synthetic.py'

tiny_channels = 64
# The Siamese quickstart model, one-stage: its preprocessor, backbone, FPN,
# matcher and query fusion are kept; the detector type, the head (FCOS in
# place of RPN + RoI head) and the train/test settings change. `_delete_`
# replaces the base model by this dict (built from it), so the two-stage
# heads are gone and nothing else is lost.
model = dict(
    _base_.model,
    _delete_=True,
    type='SiameseSingleStageDetector',
    bbox_head=dict(
        type='MatchingFCOSHead',
        num_classes=1,
        in_channels=tiny_channels,
        stacked_convs=2,
        feat_channels=tiny_channels,
        strides=[8, 16, 32],
        regress_ranges=((-1, 32), (32, 64), (64, 1e8)),
        center_sampling=True,
        center_sample_radius=1.5,
        norm_on_bbox=True,
        centerness_on_reg=True,
        conv_bias=True,
        norm_cfg=dict(type='GN', num_groups=8, requires_grad=True),
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
        nms_pre=300,
        min_bbox_size=0,
        score_thr=0.05,
        nms=dict(type='nms', iou_threshold=0.5),
        max_per_img=100))
del model['rpn_head'], model['roi_head']

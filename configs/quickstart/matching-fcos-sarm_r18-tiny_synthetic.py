# Quickstart: tiny Matching-FCOS + SARM (two-stage: the tiny Matching-FCOS
# head proposes, the structure-aware relation module re-scores) trained from
# scratch on the synthetic one-shot data, on CPU:
#   python tools/data/generate_synthetic.py data/synthetic
#   python tools/train.py configs/quickstart/matching-fcos-sarm_r18-tiny_synthetic.py
# Same data, schedule, backbone, FPN, matcher and proposal/RoI counts as the
# Siamese quickstart (inherited); the RPN is the tiny Matching-FCOS head of
# matching-fcos_r18-tiny_synthetic.py and the RoI head is SARM (7x7 pooling,
# two 1x1 relation convs of 64 channels, two FCs of 256).
# Not a paper setting: see configs/matching-fcos/.
_base_ = './siamese-faster-rcnn_r18-tiny_synthetic.py'

tiny_channels = 64
model = dict(
    rpn_head=dict(
        _delete_=True,
        type='MatchingFCOSHead',
        num_classes=1,
        in_channels=tiny_channels,
        stacked_convs=2,
        feat_channels=tiny_channels,
        strides=[8, 16, 32],
        # 4x the stride (see matching-fcos_r18-tiny_synthetic.py).
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
    roi_head=dict(
        _delete_=True,
        type='SARMRoIHead',
        proposal_feats='target',
        bbox_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
            out_channels=tiny_channels,
            featmap_strides=[8, 16, 32]),
        bbox_head=dict(
            type='SARMBBoxHead',
            in_channels=tiny_channels,
            query_channels=tiny_channels,
            relation_channels=tiny_channels,
            num_relation_convs=2,
            num_shared_fcs=2,
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
    # FCOS assigns its own targets: no anchor assigner/sampler for the RPN.
    # mmdet's random sampler, as first measured; OHEM
    # (train_cfg.rcnn.sampler.type='OHEMSampler') works here too.
    train_cfg=dict(rpn=dict(_delete_=True),
                   rcnn=dict(sampler=dict(type='RandomSampler'))))

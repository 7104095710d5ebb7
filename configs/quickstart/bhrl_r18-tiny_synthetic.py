# Quickstart with BHRL's RoI head (instance-level hierarchical relation +
# ratio-preserving loss) on the tiny Siamese model: same backbone, L1
# matcher, data and schedule as the Siamese quickstart, so the two compare.
#   python tools/train.py configs/quickstart/bhrl_r18-tiny_synthetic.py
# Widths are scaled down with the 64-channel FPN (BHRL: 128-ch relations,
# 32-ch keys, 384-ch fusion, FC 1024 on a 256-ch FPN).
_base_ = './siamese-faster-rcnn_r18-tiny_synthetic.py'

tiny_channels = 64
model = dict(
    # Measured on the synthetic data with mmdet's random sampler (the
    # README's row), kept here; the *_glyphs-pretrained configs use OHEM
    # (train_cfg.rcnn.sampler.type='OHEMSampler'), as the Siamese one does.
    train_cfg=dict(rcnn=dict(sampler=dict(type='RandomSampler'))),
    roi_head=dict(
        _delete_=True,
        type='BHRLRoIHead',
        bbox_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
            out_channels=tiny_channels,
            featmap_strides=[8, 16, 32]),
        bbox_head=dict(
            type='BHRLBBoxHead',
            in_channels=tiny_channels,
            relation_channels=32,
            key_channels=16,
            fused_channels=96,
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
                type='RatioPreservingLoss', alpha=0.25, loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0))))

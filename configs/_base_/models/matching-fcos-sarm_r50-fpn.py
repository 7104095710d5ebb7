# Matching-FCOS + SARM (Li et al., arXiv 2005.03819), two-stage: the
# Matching-FCOS model of matching-fcos_r50-fpn.py (same backbone, FPN P3-P7,
# matcher and FCOS head) proposes class-agnostic boxes as `rpn_head` of
# SiameseTwoStageDetector; the structure-aware relation module (SARMRoIHead)
# pools each proposal and the query to 7x7 (RoIAlign on P3-P6), concatenates
# them, compares them with 1x1 convolutions (2 layers, 256 channels), then two
# FCs (1024) give fg/bg and a class-agnostic box (docs/methods.md,
# "Matching-FCOS + SARM").
#
# Proposals: FCOS keeps 2000 (train) / 1000 (test) points per level, NMS 0.7,
# 1000 proposals, as the Siamese FPN baseline's RPN, so the two second stages
# are compared on equal proposal counts. FCOS needs no assigner:
# train_cfg.rpn is empty. Second stage: 512 RoIs/img, 25 % positives, gt added
# as proposals; score thr 0.05, NMS 0.5, 100 detections.
_base_ = './matching-fcos_r50-fpn.py'

# The Matching-FCOS model, two-stage: everything of the base model is kept
# (preprocessor, backbone, FPN, matcher, query fusion) but the detector type,
# its FCOS head, which becomes the RPN, and the train/test settings, which
# are a two-stage detector's. `_delete_` replaces the base model by this
# dict (built from it), so `bbox_head` is gone and nothing else is lost.
model = dict(
    _base_.model,
    _delete_=True,
    type='SiameseTwoStageDetector',
    rpn_head=_base_.model.bbox_head,
    roi_head=dict(
        type='SARMRoIHead',
        proposal_feats='target',
        bbox_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
            out_channels=256,
            featmap_strides=[8, 16, 32, 64]),
        bbox_head=dict(
            type='SARMBBoxHead',
            in_channels=256,
            query_channels=256,
            relation_channels=256,
            num_relation_convs=2,
            num_shared_fcs=2,
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
        rpn=dict(),
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
del model['bbox_head']

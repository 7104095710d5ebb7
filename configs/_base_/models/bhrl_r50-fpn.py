# BHRL (Yang et al., CVPR 2022), ResNet-50-FPN (docs/methods.md, "BHRL").
# Everything before the RoI head is the Siamese Faster R-CNN R50-FPN base:
# backbone + FPN (P2-P6, 256 channels) shared by targets and queries; the
# image-level relation is the L1-difference matcher (384 channels) feeding
# the RPN (one anchor scale 8, ratios 0.5/1/2, strides 4-64); RPN 2000/1000
# (train) and 1000/1000 (test) proposals; 512 RoIs/img with 25 % positives
# and gt added as proposals; score thr 0.05, NMS 0.5, 100 detections.
# Inputs (target 1024x1024 keep-ratio + pad, query 192x192) are set in the
# configs/bhrl/ pipelines; the schedule (SGD 0.02 for 16 images, 9 epochs,
# step at 6, 500 warm-up iterations) in the configs/bhrl/ files.
#
# Instance level: BHRLRoIHead pools 7x7 target RoIs from the *un-matched*
# FPN maps and the query's RoI feature (all query levels upsampled to P2,
# averaged, RoIAlign of the whole query box, once per episode); BHRLBBoxHead
# relates them (contrastive, salient, attention relations -> 128 ch each,
# fused with the RoI feature to 384 ch), then 2 shared FC(1024) -> fg/bg +
# class-agnostic box. The classifier loss is the ratio-preserving loss
# (alpha 0.25).
#
# Backbone weights: see the warning in siamese-faster-rcnn_r50-fpn.py
# (full-ImageNet ResNet-50 inflates unseen-class AP).
_base_ = './siamese-faster-rcnn_r50-fpn.py'

fpn_channels = 256
model = dict(
    roi_head=dict(
        type='BHRLRoIHead',
        # Pools from the un-matched FPN maps (256 channels, not the
        # matcher's 384); RoIAlign 7x7 on P2-P5 as in the base.
        bbox_roi_extractor=dict(out_channels=fpn_channels),
        # The base's box coder, class-agnostic L1 regression, 7x7 RoIs and
        # FC width 1024; the relations and the classifier loss are BHRL's.
        bbox_head=dict(
            type='BHRLBBoxHead',
            in_channels=fpn_channels,
            relation_channels=128,
            key_channels=32,
            fused_channels=384,
            num_shared_fcs=2,
            loss_cls=dict(
                _delete_=True,
                type='RatioPreservingLoss',
                alpha=0.25,
                loss_weight=1.0))))

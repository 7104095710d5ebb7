# CoAE (Hsieh et al., NeurIPS 2019): the ResNet-50-C4 Siamese Faster R-CNN
# with non-local co-attention + squeeze-and-co-excitation as the matcher, a
# query-aware RoI head and a margin ranking loss (docs/methods.md, "CoAE").
# - The RPN proposes on the co-attended target, the RoI head pools proposals
#   from the co-excited target (CoAttentionMatcher returns both).
# - RoIAlign 7x7 (paper) -> layer4 (shared head, stride 2) -> global average
#   pooling: 2048-d proposal feature; the co-excited query map goes through
#   the same layer4 + pooling once per episode. Classifier
#   Linear(4096, 8) -> Linear(8, 2); class-agnostic box regression.
# - Margin ranking loss over the sampled RoIs of each image: margin 0.3,
#   weight 3 (set `loss_rank=None` in bbox_head to turn it off).
# Inherited from the C4 base (same as the paper): anchors scales 4,8,16,32
# ratios 0.5,1,2; RPN 12000/2000 (train) 6000/300 (test); 128 RoIs/img 25 %
# positives; test NMS 0.3, 100 detections. The schedule (SGD lr 0.01, x0.1
# every 4 epochs) is set in configs/coae/.
# Backbone weights: see the warning in siamese-faster-rcnn_r50-c4.py.
_base_ = './siamese-faster-rcnn_r50-c4.py'

model = dict(
    matcher=dict(
        _delete_=True,
        type='CoAttentionMatcher',
        in_channels=1024,
        inter_channels=512,
        reduction=16,
        norm_cfg=dict(type='BN')),
    roi_head=dict(
        type='CoAERoIHead',
        query_level=0,
        bbox_roi_extractor=dict(
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0)),
        bbox_head=dict(
            _delete_=True,
            type='CoAEBBoxHead',
            in_channels=2048,
            query_channels=2048,
            cls_hidden_channels=8,
            roi_feat_size=7,
            num_classes=1,
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                target_means=[0., 0., 0., 0.],
                target_stds=[0.1, 0.1, 0.2, 0.2]),
            reg_class_agnostic=True,
            loss_cls=dict(
                type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0),
            loss_rank=dict(
                type='MarginRankingLoss', margin=0.3, loss_weight=3.0))))

# SaFT (Zhao et al., "Semantic-aligned Fusion Transformer for One-shot Object
# Detection", CVPR 2022), one-stage and proposal-free: ResNet-50-FPN P3-P7
# (256 channels) shared by targets and queries, then
#   - the vertical fusion module (SaFTVerticalFusion, a neck after the FPN):
#     every pyramid position attends to its own image location on all five
#     levels, for the target image and for the query patch alike; the
#     detector runs the neck once per distinct target image and query set;
#   - the horizontal fusion module (SaFTHorizontalFusion, the matcher): every
#     point of the query's pyramid attends to the whole target pyramid, then
#     every target point attends to the query so aligned; the fused target
#     tokens and |target - read-out| become 256-channel maps (1x1 conv, ReLU);
#   - a class-agnostic FCOS head (MatchingFCOSHead) on those maps.
# Everything the paper leaves open is Matching-FCOS's (this base inherits
# configs/_base_/models/matching-fcos_r50-fpn.py: backbone, FPN, FCOS head
# and its test settings), so that the two one-stage models differ only in
# how query and target are fused. Attention sizes: the FPN's 256 channels,
# 8 heads (32 channels each), FFN 1024, dropout 0.1 (docs/methods.md, "SaFT").
#
# !!! Backbone weights: `torchvision://resnet50` is the full-ImageNet
# ResNet-50 and leaks unseen COCO classes (docs/protocol.md, "Backbone
# pre-training"). For comparable numbers point backbone.init_cfg.checkpoint
# at a COCO-free ResNet-50.
_base_ = './matching-fcos_r50-fpn.py'

num_levels = 5  # P3-P7
model = dict(
    neck=[
        _base_.model.neck,
        dict(
            type='SaFTVerticalFusion',
            in_channels=256,
            num_levels=num_levels,
            num_heads=8,
            feedforward_channels=1024,
            dropout=0.1)
    ],
    matcher=dict(
        _delete_=True,
        type='SaFTHorizontalFusion',
        in_channels=256,
        out_channels=_base_.fused_channels,
        num_levels=num_levels,
        num_heads=8,
        feedforward_channels=1024,
        dropout=0.1))

# AIT (Chen et al., CVPR 2021): CoAE's ResNet-50-C4 detector
# (coae_r50-c4.py) with multi-head co-attention as the matcher and, per
# proposal, an encoder-decoder transformer and selective channel attention
# between RoIAlign and layer4 (docs/methods.md, "AIT").
# - Matcher: MultiHeadCoAttentionMatcher, 8 heads over 512 channels, no
#   co-excitation (the selective channel attention takes its place); the RPN
#   and RoIAlign 7x7 both run on the co-attended target.
# - AdaptiveImageTransformer (paper's sizes): 1x1 conv 1024 -> 512, sine
#   positions, d_model 512, 8 heads, FFN 2048, 1 encoder layer (the query,
#   once per episode) + 1 decoder layer (each proposal), dropout 0.1, 1x1
#   conv back to 1024.
# - SelectiveChannelAttention: per channel, proposal or its translation,
#   query-aware weights (reduction 16).
# - CoAE's classifier (Linear(4096, 8) -> Linear(8, 2) on proposal ⊕ query
#   after layer4 + GAP), class-agnostic regression and margin ranking loss
#   (margin 0.3, weight 3) are inherited unchanged, as are anchors, proposal
#   counts, sampling and test NMS.
# Backbone weights: see the warning in siamese-faster-rcnn_r50-c4.py.
_base_ = './coae_r50-c4.py'

channels = 1024
model = dict(
    matcher=dict(
        _delete_=True,
        type='MultiHeadCoAttentionMatcher',
        in_channels=channels,
        embed_dims=512,
        num_heads=8,
        dropout=0.1,
        norm_cfg=dict(type='BN')),
    roi_head=dict(
        type='AITRoIHead',
        transformer=dict(
            type='AdaptiveImageTransformer',
            in_channels=channels,
            embed_dims=512,
            num_heads=8,
            feedforward_channels=2048,
            num_encoder_layers=1,
            num_decoder_layers=1,
            dropout=0.1),
        channel_attention=dict(
            type='SelectiveChannelAttention', channels=channels,
            reduction=16)))

# Quickstart with AIT's multi-head co-attention matcher, per-proposal
# transformer, selective channel attention and CoAE's classifier and
# margin ranking loss (same tiny backbone, data and schedule as the Siamese
# quickstart, so the methods are comparable):
#   python tools/train.py configs/quickstart/ait_r18-tiny_synthetic.py
# The layout is AIT's (configs/_base_/models/ait_r50-c4.py); the widths are
# narrowed for the 64-channel tiny FPN (paper value in brackets):
#   matcher attention       32 ch, 4 heads    (512 ch, 8 heads)
#   transformer d_model     32, 4 heads       (512, 8 heads)
#   transformer FFN         64                (2048)
#   layers                  1 encoder + 1 decoder, dropout 0.1 (as the paper)
#   channel attention       reduction 8: 64 -> 8 -> 128 (1024 -> 64 -> 2048)
#   shared head             3x3 conv 64 -> 128, GN (ResNet layer4, 2048 ch)
#   classifier              Linear(256, 8) -> Linear(8, 2) (Linear(4096, 8))
# The tiny model has no ResNet layer4; as in the CoAE quickstart one 3x3
# conv plays the shared head for RoIs and query. GroupNorm in the matcher
# for the reason given in the tiny model's base config.
_base_ = './coae_r18-tiny_synthetic.py'

tiny_channels = 64
model = dict(
    matcher=dict(
        _delete_=True,
        type='MultiHeadCoAttentionMatcher',
        in_channels=tiny_channels,
        embed_dims=32,
        num_heads=4,
        dropout=0.1,
        norm_cfg=dict(type='GN', num_groups=8)),
    roi_head=dict(
        type='AITRoIHead',
        transformer=dict(
            type='AdaptiveImageTransformer',
            in_channels=tiny_channels,
            embed_dims=32,
            num_heads=4,
            feedforward_channels=64,
            num_encoder_layers=1,
            num_decoder_layers=1,
            dropout=0.1),
        channel_attention=dict(
            type='SelectiveChannelAttention', channels=tiny_channels,
            reduction=8)))

# Quickstart: a tiny SaFT (one-stage: vertical fusion neck, horizontal fusion
# matcher, class-agnostic FCOS) trained from scratch on the synthetic
# one-shot data, on CPU:
#   python tools/data/generate_synthetic.py data/synthetic
#   python tools/train.py configs/quickstart/saft_r18-tiny_synthetic.py
# Everything but the two fusion modules is the Matching-FCOS quickstart
# (inherited: data, schedule, the tiny ResNet-18 with 16 base channels, its
# 3-level FPN at strides 8/16/32, the tiny FCOS head with its regress
# ranges), so the two one-stage quickstart rows differ only in the fusion.
# Not a paper setting: see configs/saft_r50.py.
#
# Narrowed from the R50 config (configs/_base_/models/saft_r50-fpn.py):
#   width of both fusion modules 256 -> 64 (the tiny FPN's channels; also
#   the matcher's output and the FCOS head's input), attention heads 8 -> 4
#   (16 channels per head instead of 32), FFN 1024 -> 256 (kept at 4x the
#   width), pyramid levels 5 (P3-P7) -> 3 (P3-P5). Dropout stays 0.1.
_base_ = './matching-fcos_r18-tiny_synthetic.py'

tiny_channels = 64
num_levels = 3
model = dict(
    neck=[
        _base_.model.neck,
        dict(
            type='SaFTVerticalFusion',
            in_channels=tiny_channels,
            num_levels=num_levels,
            num_heads=4,
            feedforward_channels=4 * tiny_channels,
            dropout=0.1)
    ],
    matcher=dict(
        _delete_=True,
        type='SaFTHorizontalFusion',
        in_channels=tiny_channels,
        out_channels=tiny_channels,
        num_levels=num_levels,
        num_heads=4,
        feedforward_channels=4 * tiny_channels,
        dropout=0.1))

# Quickstart with CAT's cross-attention matcher instead of the L1 difference
# (same tiny backbone, data and schedule as the Siamese quickstart, so the
# two are comparable):
#   python tools/train.py configs/quickstart/cat_r18-tiny_synthetic.py
_base_ = './siamese-faster-rcnn_r18-tiny_synthetic.py'

model = dict(
    # The Siamese quickstart's OHEM sampler runs the plain RoI head; this
    # method was measured with mmdet's random sampler, kept here.
    train_cfg=dict(rcnn=dict(sampler=dict(type='RandomSampler'))),
    matcher=dict(
        _delete_=True,
        type='CrossAttentionMatcher',
        in_channels=64,
        out_channels=64,
        embed_dims=32,
        num_heads=4,
        feedforward_channels=64,
        num_layers=1))

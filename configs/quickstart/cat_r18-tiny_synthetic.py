# Quickstart with CAT's cross-attention matcher instead of the L1 difference
# (same tiny backbone, data and schedule as the Siamese quickstart, so the
# two are comparable):
#   python tools/train.py configs/quickstart/cat_r18-tiny_synthetic.py
_base_ = './siamese-faster-rcnn_r18-tiny_synthetic.py'

model = dict(
    # Measured on the synthetic data with mmdet's random sampler (the
    # README's row), kept here; the *_glyphs-pretrained configs use OHEM
    # (train_cfg.rcnn.sampler.type='OHEMSampler'), as the Siamese one does.
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

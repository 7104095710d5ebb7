# CAT (Lin et al., arXiv 2104.14984): the ResNet-50-C4 Siamese Faster R-CNN
# with a two-stream cross-attention transformer as the matcher before the
# RPN. Layer sizes are this project's choice (the paper does not state them);
# see CrossAttentionMatcher's docstring for the reasons.
_base_ = './siamese-faster-rcnn_r50-c4.py'

model = dict(
    matcher=dict(
        _delete_=True,
        type='CrossAttentionMatcher',
        in_channels=1024,
        out_channels=1024,
        embed_dims=256,
        num_layers=3,
        num_heads=8,
        feedforward_channels=1024,
        dropout=0.1))

# The tiny Siamese quickstart model on the glyph data, starting from a
# backbone pre-trained to classify crops of the *seen* glyph classes (never
# the unseen ones; tools/pretrain_backbone.py takes them from this config's
# training dataset). The project's stand-in for the papers' ImageNet
# weights with the COCO classes removed (docs/protocol.md):
#   python tools/data/generate_glyphs.py data/glyphs
#   python tools/pretrain_backbone.py \
#       configs/quickstart/siamese-faster-rcnn_r18-tiny_glyphs-pretrained.py \
#       --out work_dirs/pretrain/glyphs_r18-tiny.pth
#   python tools/train.py \
#       configs/quickstart/siamese-faster-rcnn_r18-tiny_glyphs-pretrained.py
_base_ = './siamese-faster-rcnn_r18-tiny_glyphs.py'

# (_delete_: the base model has init_cfg=None, which a dict cannot merge into.)
model = dict(backbone=dict(init_cfg=dict(
    _delete_=True, type='Pretrained',
    checkpoint='work_dirs/pretrain/glyphs_r18-tiny.pth')))

# configs/quickstart/matching-fcos-sarm_r18-tiny_glyphs.py starting from the tiny backbone
# pre-trained to classify crops of the *seen* glyph classes only (the same
# file as the Siamese glyph model; how it is made and why the unseen classes
# never enter it: configs/quickstart/siamese-faster-rcnn_r18-tiny_glyphs-pretrained.py
# and docs/protocol.md):
#   python tools/pretrain_backbone.py configs/quickstart/matching-fcos-sarm_r18-tiny_glyphs-pretrained.py \
#       --out work_dirs/pretrain/glyphs_r18-tiny.pth
#   python tools/train.py configs/quickstart/matching-fcos-sarm_r18-tiny_glyphs-pretrained.py
_base_ = './matching-fcos-sarm_r18-tiny_glyphs.py'

# (_delete_: the base model has init_cfg=None, which a dict cannot merge into.)
model = dict(
    backbone=dict(init_cfg=dict(
        _delete_=True, type='Pretrained',
        checkpoint='work_dirs/pretrain/glyphs_r18-tiny.pth')),
    # OHEM in SARM's query-aware RoI head, as in the CAT and CoAE glyph
    # configs (measured only with it: README, glyph table).
    train_cfg=dict(rcnn=dict(sampler=dict(type='OHEMSampler'))))

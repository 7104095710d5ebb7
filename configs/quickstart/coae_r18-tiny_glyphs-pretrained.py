# configs/quickstart/coae_r18-tiny_glyphs.py starting from the tiny backbone
# pre-trained to classify crops of the *seen* glyph classes only (the same
# file as the Siamese glyph model; how it is made and why the unseen classes
# never enter it: configs/quickstart/siamese-faster-rcnn_r18-tiny_glyphs-pretrained.py
# and docs/protocol.md):
#   python tools/pretrain_backbone.py configs/quickstart/coae_r18-tiny_glyphs-pretrained.py \
#       --out work_dirs/pretrain/glyphs_r18-tiny.pth
#   python tools/train.py configs/quickstart/coae_r18-tiny_glyphs-pretrained.py
_base_ = './coae_r18-tiny_glyphs.py'

# (_delete_: the base model has init_cfg=None, which a dict cannot merge into.)
model = dict(
    backbone=dict(init_cfg=dict(
        _delete_=True, type='Pretrained',
        checkpoint='work_dirs/pretrain/glyphs_r18-tiny.pth')),
    # OHEM RoI sampling, as in the Siamese quickstart: the hard negatives
    # are the look-alike glyphs (unseen gain +8.2 -> +11.6 for CAT, +8.3 ->
    # +12.7 for CoAE, false alarms per negative target about halved;
    # README, glyph table).
    train_cfg=dict(rcnn=dict(sampler=dict(type='OHEMSampler'))))

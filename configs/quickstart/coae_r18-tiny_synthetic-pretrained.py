# configs/quickstart/coae_r18-tiny_synthetic.py starting from the tiny
# backbone pre-trained on crops of the *seen* shape classes only, the same
# file as the Siamese quickstart's (how it is made and why the unseen classes
# never enter it: configs/quickstart/siamese-faster-rcnn_r18-tiny_synthetic-pretrained.py
# and docs/protocol.md):
#   python tools/pretrain_backbone.py \
#       configs/quickstart/siamese-faster-rcnn_r18-tiny_synthetic-pretrained.py \
#       --out work_dirs/pretrain/synthetic_r18-tiny.pth
#   python tools/train.py configs/quickstart/coae_r18-tiny_synthetic-pretrained.py
_base_ = './coae_r18-tiny_synthetic.py'

# (_delete_: the base model has init_cfg=None, which a dict cannot merge into.)
model = dict(
    backbone=dict(init_cfg=dict(
        _delete_=True, type='Pretrained',
        checkpoint='work_dirs/pretrain/synthetic_r18-tiny.pth')),
    # OHEM RoI sampling, as in the Siamese quickstart and the CoAE glyph
    # pre-trained config: the hard negatives are the look-alike shapes.
    train_cfg=dict(rcnn=dict(sampler=dict(type='OHEMSampler'))))

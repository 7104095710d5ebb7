# The quickstart model (configs/quickstart/siamese-faster-rcnn_r18-tiny_synthetic.py)
# starting from a tiny backbone pre-trained to classify crops of the *seen*
# shape classes only (tools/pretrain_backbone.py takes them from this
# config's training dataset; the unseen classes never enter it, see
# docs/protocol.md):
#   python tools/pretrain_backbone.py \
#       configs/quickstart/siamese-faster-rcnn_r18-tiny_synthetic-pretrained.py \
#       --out work_dirs/pretrain/synthetic_r18-tiny.pth
#   python tools/train.py configs/quickstart/siamese-faster-rcnn_r18-tiny_synthetic-pretrained.py
_base_ = './siamese-faster-rcnn_r18-tiny_synthetic.py'

# (_delete_: the base model has init_cfg=None, which a dict cannot merge into.)
model = dict(backbone=dict(init_cfg=dict(
    _delete_=True, type='Pretrained',
    checkpoint='work_dirs/pretrain/synthetic_r18-tiny.pth')))

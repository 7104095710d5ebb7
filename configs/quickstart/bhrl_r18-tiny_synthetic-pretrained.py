# The BHRL quickstart (configs/quickstart/bhrl_r18-tiny_synthetic.py) started
# from the tiny backbone pre-trained on crops of the *seen* shape classes,
# the same file as the Siamese quickstart's (docs/protocol.md):
#   python tools/pretrain_backbone.py \
#       configs/quickstart/siamese-faster-rcnn_r18-tiny_synthetic-pretrained.py \
#       --out work_dirs/pretrain/synthetic_r18-tiny.pth --iters 1500
#   python tools/train.py configs/quickstart/bhrl_r18-tiny_synthetic-pretrained.py
_base_ = './bhrl_r18-tiny_synthetic.py'

# (_delete_: the base model has init_cfg=None, which a dict cannot merge into.)
model = dict(backbone=dict(init_cfg=dict(
    _delete_=True, type='Pretrained',
    checkpoint='work_dirs/pretrain/synthetic_r18-tiny.pth')))

# Entry config: BHRL, ResNet-50-FPN, COCO split 1. Other splits and VOC are
# in configs/bhrl/.
_base_ = './bhrl/bhrl_r50-fpn_8xb2-9e_coco-split1.py'

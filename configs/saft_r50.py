# Entry config: SaFT (one-stage), ResNet-50-FPN, COCO split 1. Other splits
# and VOC are in configs/saft/.
_base_ = './saft/saft_r50-fpn_8xb2-12e_coco-split1.py'

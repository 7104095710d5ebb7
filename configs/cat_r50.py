# Entry config: CAT, ResNet-50-C4, COCO split 1. Other splits and VOC are in
# configs/cat/.
_base_ = './cat/cat_r50-c4_8xb2-12e_coco-split1.py'

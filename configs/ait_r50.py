# Entry config: AIT, ResNet-50-C4, COCO split 1. Other splits and VOC are in
# configs/ait/.
_base_ = './ait/ait_r50-c4_8xb2-12e_coco-split1.py'

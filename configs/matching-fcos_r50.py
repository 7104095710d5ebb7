# Entry config: Matching-FCOS (one-stage), ResNet-50-FPN, COCO split 1.
# The two-stage Matching-FCOS + SARM, other splits and VOC are in
# configs/matching-fcos/.
_base_ = './matching-fcos/matching-fcos_r50-fpn_8xb2-12e_coco-split1.py'

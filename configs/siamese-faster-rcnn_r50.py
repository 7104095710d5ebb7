# Entry config: Siamese Faster R-CNN (L1-difference matcher), ResNet-50-FPN,
# COCO split 1. Other splits and VOC are in configs/siamese-faster-rcnn/.
_base_ = './siamese-faster-rcnn/siamese-faster-rcnn_r50-fpn_8xb2-12e_coco-split1.py'

# An analysis split of the glyph data, not a benchmark: the Cyrillic block
# seen and the Latin block unseen (the glyph split of
# configs/_base_/datasets/glyphs_oneshot.py holds Latin seen and Cyrillic
# unseen). Trained like siamese-faster-rcnn_r18-tiny_glyphs-pretrained.py,
# it tells a block's own difficulty from how well it transfers from the
# seen blocks (README, glyph section):
#   python tools/pretrain_backbone.py \
#       configs/quickstart/siamese-faster-rcnn_r18-tiny_glyphs-pretrained-cyrillic-seen.py \
#       --out work_dirs/pretrain/glyphs-cyrillic-seen_r18-tiny.pth --iters 3000
#   python tools/train.py configs/quickstart/siamese-faster-rcnn_r18-tiny_glyphs-pretrained-cyrillic-seen.py
#   python tools/test.py configs/quickstart/siamese-faster-rcnn_r18-tiny_glyphs-pretrained-cyrillic-seen.py CKPT
#   python tools/analysis/summarize_runs.py work_dirs/... --by-supercategory
# The backbone is pre-trained on this split's seen classes (Cyrillic in,
# Latin out), so it needs its own file.
_base_ = './siamese-faster-rcnn_r18-tiny_glyphs-pretrained.py'

from oneshot.datasets.glyphs import glyph_split  # noqa: E402

# The standard glyph split holds out greek, cyrillic and misc-symbol.
split = glyph_split(unseen_blocks=('greek', 'misc-symbol', 'latin'))
seen_classes, unseen_classes = split['seen'], split['unseen']
train_dataloader = dict(dataset=dict(split=split))
val_dataloader = dict(dataset=dict(split=split))
test_dataloader = val_dataloader
model = dict(backbone=dict(init_cfg=dict(
    checkpoint='work_dirs/pretrain/glyphs-cyrillic-seen_r18-tiny.pth')))

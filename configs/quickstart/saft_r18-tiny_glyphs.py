# The SaFT quickstart model on the glyph data (229
# fine-grained character classes, 80 unseen; colour carries no class
# information):
#   python tools/data/generate_glyphs.py data/glyphs
#   python tools/train.py configs/quickstart/saft_r18-tiny_glyphs.py
# Model, schedule and pipelines of saft_r18-tiny_synthetic.py;
# only the data changes (the split is the built-in 'glyphs' one, the class
# lists of
# configs/_base_/datasets/glyphs_oneshot.py).
_base_ = './saft_r18-tiny_synthetic.py'

glyphs = dict(data_root='data/glyphs/', split='glyphs')
train_dataloader = dict(dataset=glyphs)
# 229 classes: 3 negative targets per class keep the test short.
val_dataloader = dict(dataset=dict(glyphs, num_negatives=3))
test_dataloader = val_dataloader

# The colour x shape synthetic data (generate_synthetic.py --mode colour):
# 64 classes = 8 shapes x 8 colours, each drawn in its class colour, 16
# unseen classes that are new shape/colour combinations. Colour alone tells
# most classes apart, so a detector scores well here without matching
# shapes; the quickstart uses the shape mode (synthetic_oneshot.py).
_base_ = ['./synthetic_oneshot.py']
data_root = 'data/synthetic-colour/'

# The names are those of synthetic_split('colour') in
# oneshot.datasets.synthetic (one or two lines per shape;
# tests/test_synthetic.py checks they agree).
seen_classes = [
    'green-circle', 'blue-circle', 'yellow-circle',
    'cyan-circle', 'orange-circle', 'purple-circle',
    'red-square', 'green-square', 'blue-square',
    'magenta-square', 'cyan-square', 'orange-square',
    'red-triangle', 'green-triangle', 'yellow-triangle',
    'magenta-triangle', 'cyan-triangle', 'purple-triangle',
    'red-diamond', 'blue-diamond', 'yellow-diamond',
    'magenta-diamond', 'orange-diamond', 'purple-diamond',
    'green-star', 'blue-star', 'yellow-star',
    'cyan-star', 'orange-star', 'purple-star',
    'red-cross', 'green-cross', 'blue-cross',
    'magenta-cross', 'cyan-cross', 'orange-cross',
    'red-ring', 'green-ring', 'yellow-ring',
    'magenta-ring', 'cyan-ring', 'purple-ring',
    'red-hexagon', 'blue-hexagon', 'yellow-hexagon',
    'magenta-hexagon', 'orange-hexagon', 'purple-hexagon',
]
unseen_classes = [
    'red-circle', 'magenta-circle',
    'yellow-square', 'purple-square',
    'blue-triangle', 'orange-triangle',
    'green-diamond', 'cyan-diamond',
    'red-star', 'magenta-star',
    'yellow-cross', 'purple-cross',
    'blue-ring', 'orange-ring',
    'green-hexagon', 'cyan-hexagon',
]
split = dict(seen=seen_classes, unseen=unseen_classes)

train_dataloader = dict(dataset=dict(data_root=data_root, split=split))
val_dataloader = dict(dataset=dict(data_root=data_root, split=split))
test_dataloader = val_dataloader

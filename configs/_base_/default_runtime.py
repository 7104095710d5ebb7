# Runtime shared by every oneshot config: mmdet's defaults, the plugin
# import, and the multi-run one-shot test loop (5 seeded query draws, mean
# and std reported by the code, see oneshot/evaluation/loops.py).
_base_ = 'mmdet::_base_/default_runtime.py'

custom_imports = dict(imports=['oneshot'], allow_failed_imports=False)

test_cfg = dict(type='OneShotTestLoop', runs=5)

# Draws the query beside mmdet's gt / prediction panels (`--show-dir`).
visualizer = dict(
    type='OneShotLocalVisualizer',
    vis_backends=[dict(type='LocalVisBackend')],
    name='visualizer')

# Runtime shared by every oneshot config: mmdet's defaults, the plugin
# import, and the multi-run one-shot test loop (5 seeded query draws, mean
# and std reported by the code, see oneshot/evaluation/loops.py).
_base_ = 'mmdet::_base_/default_runtime.py'

custom_imports = dict(imports=['oneshot'], allow_failed_imports=False)

test_cfg = dict(type='OneShotTestLoop', runs=5)

# Checkpoints are read weights-only and must fit the model exactly
# (oneshot/engine/runner.py, docs/checkpoints.md). `trust_checkpoint = True`
# (or --trust-checkpoint) lets `load_from` unpickle a file fully: only for
# files you wrote yourself. `--resume` always trusts the run's own file.
runner_type = 'OneShotRunner'
trust_checkpoint = False

# Draws the query beside mmdet's gt / prediction panels (`--show-dir`).
visualizer = dict(
    type='OneShotLocalVisualizer',
    vis_backends=[dict(type='LocalVisBackend')],
    name='visualizer')

# Training checkpoints also hold the random generator states of every rank,
# restored by --resume: a killed run, resumed, repeats the uninterrupted run
# iteration for iteration (oneshot/utils/resume.py).
#
# A NaN or inf in any loss term stops training before the optimizer step,
# with an error naming the iteration, the term and the batch's episodes;
# `default_hooks.nonfinite_loss.mode='skip'` skips such batches instead and
# counts them (oneshot/engine/hooks/nonfinite_loss_hook.py).
default_hooks = dict(
    resume_state=dict(type='ResumeStateHook'),
    nonfinite_loss=dict(type='NonFiniteLossHook', mode='raise'))

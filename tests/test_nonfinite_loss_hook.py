"""NonFiniteLossHook on the tiny quickstart model with an injected NaN / inf
loss term: the default stops before the optimizer step with an error naming
the iteration, the term and the batch's episodes; mode='skip' drops the
batch (weights untouched by it) and counts it."""
import logging
import math

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner
from quickstart_utils import QUICKSTART_CFG, make_synthetic, quickstart_cfg

import oneshot.engine.hooks.nonfinite_loss_hook as hook_module
from oneshot.engine.hooks import NonFiniteLossError, NonFiniteLossHook


@pytest.fixture(scope='module')
def synthetic(tmp_path_factory) -> str:
    return make_synthetic(str(tmp_path_factory.mktemp('synthetic')),
                          num_train=16, num_val=4)


class WeightsPerIter(Hook):
    """Copies of the weights before and after every training iteration."""

    priority = 'LOWEST'

    def __init__(self) -> None:
        self.before, self.after = {}, {}

    @staticmethod
    def _copy(runner) -> dict:
        return {k: v.detach().clone()
                for k, v in runner.model.state_dict().items()}

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.before[runner.iter + 1] = self._copy(runner)

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.after[runner.iter + 1] = self._copy(runner)


def runner_with_bad_loss(data_root: str, work_dir: str, bad_call: int,
                         term: str, value: float, mode: str = None):
    """A 4-iteration quickstart runner whose ``bad_call``-th ``loss`` call
    (1-based) returns ``term`` multiplied by ``value``; returns the runner
    and the list of (img_id, query_ann_ids) of the poisoned batch."""
    cfg = quickstart_cfg(data_root, work_dir, max_iters=4, ckpt_interval=100)
    if mode is not None:
        cfg.merge_from_dict({'default_hooks.nonfinite_loss.mode': mode})
    runner = Runner.from_cfg(cfg)
    loss, calls, poisoned = runner.model.loss, [0], []

    def bad_loss(batch_inputs, batch_data_samples):
        losses = loss(batch_inputs, batch_data_samples)
        calls[0] += 1
        if calls[0] == bad_call:
            poisoned.extend(
                (s.metainfo['episode_id'], s.metainfo['img_id'],
                 list(s.metainfo['query_ann_ids']))
                for s in batch_data_samples)
            value_ = losses[term]
            losses[term] = [v * value for v in value_] if isinstance(
                value_, list) else value_ * value
        return losses

    runner.model.loss = bad_loss
    weights = WeightsPerIter()
    runner.register_hook(weights)
    return runner, poisoned, weights


def test_default_runtime_has_the_hook_in_raise_mode():
    cfg = Config.fromfile(QUICKSTART_CFG)
    assert cfg.default_hooks.nonfinite_loss == dict(
        type='NonFiniteLossHook', mode='raise')
    with pytest.raises(ValueError, match='nonfinite_loss.mode'):
        NonFiniteLossHook(mode='ignore')


def test_nan_loss_stops_training_naming_iteration_term_and_episodes(
        synthetic, tmp_path):
    runner, poisoned, weights = runner_with_bad_loss(
        synthetic, str(tmp_path), bad_call=3, term='loss_bbox',
        value=float('nan'))
    with pytest.raises(NonFiniteLossError) as err:
        runner.train()
    msg = str(err.value)
    print(msg)
    assert msg.startswith('Non-finite loss at iteration 3: loss_bbox=nan.')
    assert 'loss_cls' not in msg  # only the bad term is named
    assert 'annotations/train.json' in msg
    assert len(poisoned) == 2
    for episode_id, img_id, ann_ids in poisoned:
        assert (f'episode {episode_id} (target image id {img_id}, query '
                f'annotation ids {ann_ids})') in msg
    assert "mode='skip'" in msg
    # Stopped before the step: the weights are those after iteration 2.
    assert 3 not in weights.after
    after_2 = weights.after[2]
    for name, value in runner.model.state_dict().items():
        assert torch.equal(value, after_2[name]), name


def test_skip_mode_drops_the_batch_and_counts_it(synthetic, tmp_path,
                                                 monkeypatch):
    runner, poisoned, weights = runner_with_bad_loss(
        synthetic, str(tmp_path), bad_call=2, term='loss_rpn_cls',
        value=float('inf'), mode='skip')
    logged = []
    monkeypatch.setattr(
        hook_module, 'print_log',
        lambda msg, logger=None, level=None: logged.append((level, msg)))
    runner.train()
    assert runner.iter == 4  # training went on
    hook = next(h for h in runner.hooks if isinstance(h, NonFiniteLossHook))
    assert hook.num_skipped == 1
    assert runner.message_hub.get_info(
        'nonfinite_loss_skipped_batches') == 1
    # Iteration 2 left the weights as they were; iteration 3 changed them.
    for name, value in weights.before[2].items():
        assert torch.equal(value, weights.after[2][name]), name
    assert any(not torch.equal(v, weights.after[3][k])
               for k, v in weights.before[3].items())
    # Only the three good iterations were logged, all finite.
    losses = list(runner.message_hub.get_scalar('train/loss').data[0])
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses)
    # The patches are gone after training.
    assert 'parse_losses' not in vars(runner.model)
    assert 'train_step' not in vars(runner.model)
    # One warning for the batch, naming it, and one at the end.
    assert [level for level, _ in logged] == [logging.WARNING] * 2
    print(logged[0][1])
    assert logged[0][1].startswith(
        'Non-finite loss at iteration 2: loss_rpn_cls=inf.')
    for episode_id, img_id, ann_ids in poisoned:
        assert (f'episode {episode_id} (target image id {img_id}, query '
                f'annotation ids {ann_ids})') in logged[0][1]
    assert logged[0][1].endswith(
        'Batch skipped (no optimizer step); 1 batch(es) skipped so far.')
    assert logged[1][1].startswith(
        'NonFiniteLossHook: 1 training batch(es) were skipped')

"""Matchers: shapes, formulas, gradients, dependence on the query."""
import pytest
import torch
from mmdet.registry import MODELS

from oneshot.models.matchers import (CrossAttentionMatcher, L1DiffMatcher,
                                     PositionEncoding2D, flatten_positions,
                                     unflatten_positions)


def _feats(batch=2, channels=16, sizes=((12, 10), (6, 5)), seed=0):
    gen = torch.Generator().manual_seed(seed)
    return tuple(
        torch.randn(batch, channels, h, w, generator=gen) for h, w in sizes)


def _tiny_cat(**kwargs) -> CrossAttentionMatcher:
    cfg = dict(
        type='CrossAttentionMatcher',
        in_channels=16,
        embed_dims=16,
        num_layers=2,
        num_heads=4,
        feedforward_channels=32)
    cfg.update(kwargs)
    return MODELS.build(cfg)


# ---------------------------------------------------------------- helpers
def test_flatten_unflatten_round_trip():
    x = torch.randn(2, 5, 3, 4)
    tokens = flatten_positions(x)
    assert tokens.shape == (2, 12, 5)
    assert torch.equal(tokens[:, 4], x[:, :, 1, 0])  # row-major positions
    assert torch.equal(unflatten_positions(tokens, (3, 4)), x)
    with pytest.raises(ValueError, match='cannot be reshaped'):
        unflatten_positions(tokens, (5, 4))


def test_position_encoding_is_normalised_per_map():
    encode = PositionEncoding2D(8)
    small, large = encode(torch.zeros(1, 3, 4, 4)), encode(
        torch.zeros(2, 3, 8, 8))
    assert small.shape == (1, 8, 4, 4) and large.shape == (2, 8, 8, 8)
    # normalize=True: the last position of any map encodes the same angle.
    torch.testing.assert_close(small[0, :, -1, -1], large[1, :, -1, -1])
    with pytest.raises(ValueError, match='even'):
        PositionEncoding2D(7)


# ---------------------------------------------------------- L1DiffMatcher
def test_l1_diff_matcher_formula_and_shapes():
    matcher = L1DiffMatcher(16, out_channels=24, act_cfg=None)
    target, query = _feats(), _feats(seed=1, sizes=((4, 4), (2, 2)))
    out = matcher(target, query)
    assert [o.shape for o in out] == [(2, 24, 12, 10), (2, 24, 6, 5)]
    conv = matcher.fusion_convs[0].conv
    for t, q, o in zip(target, query, out):
        pooled = q.mean(dim=(2, 3), keepdim=True)
        expected = conv(torch.cat([t, (t - pooled).abs()], dim=1))
        torch.testing.assert_close(o, expected)


def test_l1_diff_matcher_default_relu_and_per_level_convs():
    matcher = L1DiffMatcher(16, out_channels=8, shared=False, num_levels=2)
    assert len(matcher.fusion_convs) == 2
    out = matcher(_feats(), _feats(seed=1))
    assert all((o >= 0).all() for o in out)
    with pytest.raises(ValueError, match='num_levels'):
        matcher(_feats(sizes=((4, 4), ) * 3), _feats(sizes=((4, 4), ) * 3))


def test_l1_diff_matcher_rejects_mismatched_inputs():
    matcher = L1DiffMatcher(16)
    with pytest.raises(ValueError, match='in_channels'):
        matcher(_feats(channels=8), _feats(channels=8))
    with pytest.raises(ValueError, match='query levels'):
        matcher(_feats(), _feats()[:1])
    with pytest.raises(ValueError, match='batch or channels'):
        matcher(_feats(batch=2), _feats(batch=3))


# --------------------------------------------------- CrossAttentionMatcher
def test_cross_attention_matcher_shapes():
    matcher = _tiny_cat(out_channels=12)
    out = matcher(_feats(), _feats(seed=1, sizes=((4, 4), (2, 2))))
    assert [o.shape for o in out] == [(2, 12, 12, 10), (2, 12, 6, 5)]
    # out_channels defaults to in_channels (stock heads keep working).
    assert _tiny_cat().out_channels == 16


def test_cross_attention_matcher_gradients_reach_every_parameter():
    matcher = _tiny_cat(dropout=0.0)
    target = tuple(t.requires_grad_() for t in _feats(sizes=((8, 8), )))
    query = tuple(q.requires_grad_() for q in _feats(seed=1, sizes=((4, 4), )))
    out = matcher(target, query)
    # Weight positions unevenly so no gradient cancels by symmetry.
    weights = torch.linspace(0.0, 1.0, out[0].numel()).view_as(out[0])
    (out[0] * weights).sum().backward()
    for name, param in matcher.named_parameters():
        assert param.grad is not None, name
        assert param.grad.abs().sum() > 0, name
    assert query[0].grad.abs().sum() > 0
    assert target[0].grad.abs().sum() > 0


def test_cross_attention_matcher_output_depends_on_query():
    matcher = _tiny_cat().eval()
    target = _feats(batch=1, sizes=((8, 8), ))
    query_a = _feats(batch=1, seed=1, sizes=((4, 4), ))
    query_b = _feats(batch=1, seed=2, sizes=((4, 4), ))
    with torch.no_grad():
        out_a = matcher(target, query_a)[0]
        out_a_again = matcher(target, query_a)[0]
        out_b = matcher(target, query_b)[0]
    torch.testing.assert_close(out_a, out_a_again)
    assert (out_a - out_b).abs().max() > 1e-3


def test_cross_attention_matcher_episodes_are_independent():
    """Row i of a batch equals matching episode i alone (eval mode)."""
    matcher = _tiny_cat().eval()
    target = _feats(batch=3, sizes=((8, 6), ))
    query = _feats(batch=3, seed=1, sizes=((4, 4), ))
    with torch.no_grad():
        batched = matcher(target, query)[0]
        for i in range(3):
            single = matcher((target[0][i:i + 1], ), (query[0][i:i + 1], ))
            torch.testing.assert_close(
                batched[i:i + 1], single[0], rtol=1e-4, atol=1e-5)


def test_cross_attention_matcher_rejects_bad_sizes():
    with pytest.raises(ValueError, match='divisible'):
        CrossAttentionMatcher(16, embed_dims=18, num_heads=4)
    with pytest.raises(ValueError, match='num_layers'):
        CrossAttentionMatcher(16, num_layers=0)

"""Property tests of the GMFlow and DX policies: random sweeps over shapes, K, σ (0 and 1 included), huge |x|, dropped
components and bf16 inputs must never give NaN/Inf; bad shapes must give a ValueError. Each velocity evaluation of one
sample at one pixel counts as one evaluation; the GM sweep alone asserts that it made at least 10^5."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from piflow_ref.policy import DXPolicy, GMFlowPolicy, rollout

def _random_policy(g, B, K, C, S, dtype, scale, sigma_src, drop):
    means = (torch.randn(B, K, C, *S, generator=g) * scale).to(dtype)
    logw = torch.randn(B, K, 1, *S, generator=g).log_softmax(1)
    if drop:                                                       # drop a random subset of components (never all)
        mask = torch.rand(B, K, generator=g) < 0.5
        mask[:, 0] = False
        logw = logw.masked_fill(mask.reshape(B, K, *[1] * (1 + len(S))), float('-inf')).log_softmax(1)
    logstd = (torch.randn(B, 1, 1, *[1] * len(S), generator=g) * 2 - 1).to(dtype)
    x_src = (torch.randn(B, C, *S, generator=g) * scale).to(dtype)
    return GMFlowPolicy(means, logw.to(dtype), logstd, x_src, sigma_src)


SIGMAS = [0.0, 1e-7, 1e-4, 0.01, 0.3, 0.5, 0.9, 1 - 1e-6, 1.0]


def test_gm_velocity_finite_sweep():
    g, n_evals = torch.Generator().manual_seed(0), 0
    shapes = [((), 2), ((), 16), ((4,), 3), ((3, 3), 4), ((2, 2, 2), 1)]
    for case in range(240):
        S, C = shapes[case % len(shapes)]
        K = [1, 2, 8, 33, 64][case % 5]
        B = 16
        dtype = torch.bfloat16 if case % 4 == 3 else torch.float32
        scale = [1.0, 30.0, 1e3][case % 3]
        s_src = torch.tensor([SIGMAS[(case + i) % len(SIGMAS)] for i in range(B)]).clamp_min(0.0)
        s_src = torch.where(s_src == 0, torch.ones_like(s_src), s_src) if case % 2 else s_src
        pi = _random_policy(g, B, K, C, S, dtype, scale, s_src, drop=case % 3 == 1)
        for frac in (1.0, 0.999, 0.5, 1e-3, 0.0):
            s_t = s_src * frac
            x_t = (torch.randn(B, C, *S, generator=g) * scale).to(dtype)
            u = pi.velocity(x_t, s_t)
            assert u.dtype in (torch.float32, torch.float64)
            assert torch.isfinite(u).all(), (case, K, S, dtype, scale, frac)
            n_evals += B * math.prod(S)
            if case % 3 == 1:
                ud = pi.dropout(0.5, torch.Generator().manual_seed(case)).velocity(x_t, s_t)
                assert torch.isfinite(ud).all()
                n_evals += B * math.prod(S)
    assert n_evals >= 100_000, n_evals


def test_rollout_finite_sweep():
    g = torch.Generator().manual_seed(1)
    for case in range(12):
        B, K = 64, [1, 4, 32, 64][case % 4]
        scale = [1.0, 100.0, 1e3][case % 3]
        pi = _random_policy(g, B, K, 2, (), torch.float32, scale, 1.0, drop=case % 2 == 0)
        r_end = torch.rand(B, generator=g)
        r_end[:4] = torch.tensor([0.0, 1.0, 0.5, 1e-4])
        x = rollout(pi, pi.x_src, 1.0, r_end, shift=[1.0, 3.2][case % 2])
        assert torch.isfinite(x).all(), case


def test_dx_velocity_finite_sweep():
    g = torch.Generator().manual_seed(2)
    for case in range(60):
        B, N, C, S = 16, [1, 2, 10][case % 3], 3, (2, 2)
        nodes = torch.randn(B, N, C, *S, generator=g) * [1.0, 1e3][case % 2]
        x_src = torch.randn(B, C, *S, generator=g)
        s_src = torch.rand(B, generator=g)
        s_src[0], s_src[1] = 0.0, 1.0
        pol = DXPolicy(nodes, x_src, s_src, segment_size=[1.0, 0.25][case % 2], shift=[1.0, 3.2][case % 2],
                       mode=['grid', 'poly'][case % 2])
        for frac in (1.0, 0.5, 0.0):
            u = pol.velocity(torch.randn(B, C, *S, generator=g), s_src * frac)
            assert torch.isfinite(u).all(), case


@settings(max_examples=60, deadline=None)
@given(B=st.integers(1, 4), K=st.integers(1, 64), C=st.integers(1, 4), S=st.lists(st.integers(1, 3), max_size=2),
       s_src=st.floats(0.0, 1.0), frac=st.floats(0.0, 1.0), scale=st.sampled_from([1e-3, 1.0, 1e3]),
       seed=st.integers(0, 2**16))
def test_gm_hypothesis(B, K, C, S, s_src, frac, scale, seed):
    g = torch.Generator().manual_seed(seed)
    pi = _random_policy(g, B, K, C, tuple(S), torch.float32, scale, s_src, drop=seed % 2 == 0)
    u = pi.velocity(torch.randn(B, C, *S, generator=g) * scale, s_src * frac)
    assert u.shape == (B, C, *S) and torch.isfinite(u).all()
    # at the source point the velocity is the mixture mean of the component velocities
    if s_src > 0.05 and scale <= 1.0:
        means_u = (pi.x_src.unsqueeze(1) - pi.mu) / s_src
        expect = (pi.logw.exp() * means_u).sum(1)
        assert torch.allclose(pi.velocity(pi.x_src, s_src), expect, atol=1e-3, rtol=1e-3)


def test_bad_shapes():
    B, K, C = 2, 3, 2
    good = dict(means=torch.zeros(B, K, C, 4), logweights=torch.zeros(B, K, 1, 4).log_softmax(1),
                logstd=torch.zeros(B, 1, 1, 1), x_src=torch.zeros(B, C, 4), sigma_src=torch.ones(B))
    GMFlowPolicy(**good)
    bad = [('means', torch.zeros(B, 0, C, 4), 'K >= 1'), ('means', torch.zeros(B, C), r'\(B, K, C, \*S\)'),
           ('logweights', torch.zeros(B, K, C, 4), 'logweights must have shape'),
           ('logstd', torch.zeros(B, 1, 1), 'logstd must have shape'),
           ('x_src', torch.zeros(B, C + 1, 4), 'x_src must have shape'),
           ('sigma_src', torch.ones(B + 1), r'\(B,\) tensor'), ('sigma_src', -0.5, r'\[0, 1\]')]
    for key, value, msg in bad:
        with pytest.raises(ValueError, match=msg):
            GMFlowPolicy(**{**good, key: value})
    pi = GMFlowPolicy(**good)
    with pytest.raises(ValueError, match='shape of x_src'): pi.velocity(torch.zeros(B, C, 5), 0.5)
    with pytest.raises(ValueError, match=r'\(B, N, C, \*S\)'): DXPolicy(torch.zeros(B, 0, C), torch.zeros(B, C), 1.0, 0.5)

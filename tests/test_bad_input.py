"""Bad input gets a ValueError that names what was expected (beyond the checks inside the notebooks)."""
import pytest
import torch

from piflow_ref.flow import interpolate, raw_grid, sample_ode, sigma_grid, unwarp, warp
from piflow_ref.metrics import sliced_w2
from piflow_ref.toy import Checkerboard, GaussianMixture, MLPVelocity, make_dataset, ring_gaussians

gm = ring_gaussians()


@pytest.mark.parametrize('sigma', [-0.1, 1.0001, float('nan'), torch.tensor([0.5, 2.0]), float('inf')])
def test_sigma_out_of_range(sigma):
    x = torch.zeros(2, 2)
    for fn in (lambda: gm.velocity(x, sigma), lambda: interpolate(x, x, sigma), lambda: MLPVelocity()(x, sigma)):
        with pytest.raises(ValueError, match=r'\[0, 1\]'): fn()


@pytest.mark.parametrize('nfe', [0, -3, 1.5, None, True])
def test_nfe(nfe):
    with pytest.raises(ValueError, match='nfe'): raw_grid(nfe)
    with pytest.raises(ValueError, match='nfe'): sigma_grid(nfe)


def test_shapes():
    with pytest.raises(ValueError, match=r'\(B, 2\)'): gm.velocity(torch.zeros(3, 2, 1), 0.5)
    with pytest.raises(ValueError, match=r'\(B, 2\)'): gm.denoise(torch.zeros(3), 0.5)
    with pytest.raises(ValueError, match='B = 3'): gm.velocity(torch.zeros(3, 2), torch.rand(4))
    with pytest.raises(ValueError, match='same shape'): interpolate(torch.zeros(3, 2), torch.zeros(3, 3), 0.5)
    with pytest.raises(ValueError, match=r'\(M, C\)'): GaussianMixture(torch.zeros(0, 2), 0.3)
    with pytest.raises(ValueError, match='same dimension'): sliced_w2(torch.zeros(5, 2), torch.zeros(5, 4))


def test_names_and_values():
    with pytest.raises(ValueError, match='expected one of checkerboard, gaussians, moons'): make_dataset('swiss')
    with pytest.raises(ValueError, match='shift'): warp(0.5, -1.0)
    with pytest.raises(ValueError, match='shift'): unwarp(0.5, float('nan'))
    with pytest.raises(ValueError, match='n .number of samples'): Checkerboard().sample(-1)
    with pytest.raises(ValueError, match='decrease'): sample_ode(gm.velocity, torch.zeros(2, 2), [0.0, 1.0])


def test_velocity_is_finite_everywhere():
    "The exact teacher stays finite for far-away points and at both ends of the path, in float32 and float64."
    g = torch.Generator().manual_seed(0)
    for dtype in (torch.float32, torch.float64):
        x = (torch.randn(4096, 2, generator=g) * 10 ** torch.randint(-3, 4, (4096, 1), generator=g)).to(dtype)
        for s in (torch.zeros(4096), torch.ones(4096), torch.rand(4096, generator=g)):
            assert torch.isfinite(gm.velocity(x, s.to(dtype))).all()

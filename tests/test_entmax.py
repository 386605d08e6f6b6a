"""The NumPy entmax-1.5 and sparsemax against the ``entmax`` package (torch)."""

import numpy as np
import pytest

from swattn.sw.predictors import entmax as E

torch = pytest.importorskip("torch")
entmax_pkg = pytest.importorskip("entmax")


def _ref15(z):
    return entmax_pkg.entmax15(torch.tensor(z, dtype=torch.float64), dim=-1).numpy()


def _refsparse(z):
    return entmax_pkg.sparsemax(torch.tensor(z, dtype=torch.float64), dim=-1).numpy()


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("scale", [0.1, 1.0, 5.0, 40.0])
def test_entmax15_matches_package(seed, scale):
    z = np.random.default_rng(seed).normal(size=(3, 17, 61)) * scale
    p = E.entmax15(z)
    ref = _ref15(z)
    np.testing.assert_allclose(p, ref, atol=1e-10)
    assert np.array_equal(p > 0, ref > 0)
    np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-12)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("scale", [0.1, 1.0, 5.0, 40.0])
def test_sparsemax_matches_package(seed, scale):
    z = np.random.default_rng(100 + seed).normal(size=(5, 33)) * scale
    p = E.sparsemax(z)
    ref = _refsparse(z)
    np.testing.assert_allclose(p, ref, atol=1e-10)
    assert np.array_equal(p > 0, ref > 0)


def test_ties_and_constant_rows():
    z = np.array([[1.0, 1.0, 1.0, 1.0], [3.0, 3.0, 0.0, -2.0], [0.0, 0.0, 0.0, 9.0]])
    np.testing.assert_allclose(E.entmax15(z), _ref15(z), atol=1e-12)
    np.testing.assert_allclose(E.sparsemax(z), _refsparse(z), atol=1e-12)
    # a constant row spreads evenly: 1/4 each (by symmetry, not by the code)
    np.testing.assert_allclose(E.entmax15(z)[0], 0.25)


def test_masked_entries_get_zero():
    rng = np.random.default_rng(7)
    z = rng.normal(size=(6, 20)) * 3
    mask = rng.random((6, 20)) < 0.4
    mask[:, 0] = False  # keep one finite entry per row
    zm = np.where(mask, -np.inf, z)
    p = E.entmax15(zm)
    assert np.all(p[mask] == 0)
    # the same as entmax over the unmasked entries alone, row by row
    for r in range(6):
        keep = ~mask[r]
        np.testing.assert_allclose(p[r, keep], _ref15(z[r, keep][None])[0], atol=1e-10)


def test_real_attention_scores_support():
    """Scores of the size MiniLM produces (n = 256, a few heads): the support matches exactly."""
    rng = np.random.default_rng(3)
    q, k = rng.normal(size=(2, 4, 256, 32)) * 1.5
    z = q @ np.swapaxes(k, -1, -2) / np.sqrt(32)
    assert np.array_equal(E.entmax15_support(z), _ref15(z) > 0)

"""Product quantization of descriptors: what decoding keeps, determinism, small sets, and
codec arrays a corrupt map could hold."""

from __future__ import annotations

import numpy as np
import pytest

from seqace_ros.core.product_quantizer import (
    CENTROIDS,
    ProductQuantizer,
    QuantizedDescriptors,
    fit_product_quantizer,
)


def _clustered_descriptors(count: int, seed: int = 0) -> np.ndarray:
    """``count`` unit 64-d descriptors around 40 centres with most of their variance in a few
    directions (like learned descriptors, unlike isotropic noise)."""
    rng = np.random.default_rng(seed)
    scales = np.geomspace(1.0, 0.05, 64)
    centres = rng.normal(size=(40, 64)) * scales
    descriptors = centres[rng.integers(0, 40, count)] + 0.15 * rng.normal(size=(count, 64)) * scales
    return descriptors / np.linalg.norm(descriptors, axis=1, keepdims=True)


def test_decoded_descriptors_stay_close_and_keep_nearest_neighbours() -> None:
    descriptors = _clustered_descriptors(4000)
    quantized = QuantizedDescriptors.fit(descriptors, code_bytes=16)
    decoded = quantized.decode().astype(np.float64)
    assert quantized.codes_NM.shape == (4000, 16)
    assert quantized.codes_NM.dtype == np.uint8
    np.testing.assert_allclose(np.linalg.norm(decoded, axis=1), 1.0, atol=2e-3)
    cosines = np.sum(decoded * descriptors, axis=1)
    assert np.median(cosines) > 0.99
    assert quantized.fidelity == pytest.approx(np.mean(cosines), abs=1e-3)
    # a query (an exact descriptor) finds its own stored descriptor as the nearest decoded one
    queries = descriptors[:500]
    nearest = np.argmax(queries @ decoded.T, axis=1)
    assert np.mean(nearest == np.arange(500)) > 0.95
    # fewer codes keep less
    coarse = QuantizedDescriptors.fit(descriptors, code_bytes=4).decode().astype(np.float64)
    assert np.median(np.sum(coarse * descriptors, axis=1)) < np.median(cosines)


def test_storage_is_the_codes_one_codec_and_its_fidelity() -> None:
    quantized = QuantizedDescriptors.fit(_clustered_descriptors(1000), code_bytes=16)
    assert quantized.nbytes == 1000 * 16 + 64 * 64 * 4 + 16 * CENTROIDS * 4 * 4 + 4
    assert len(quantized) == 1000


def test_fitting_is_deterministic_and_works_for_few_descriptors() -> None:
    descriptors = _clustered_descriptors(3000)
    a, b = (fit_product_quantizer(descriptors, 8, seed=3) for _ in range(2))
    np.testing.assert_array_equal(a.centroids_MCS, b.centroids_MCS)
    np.testing.assert_array_equal(a.encode(descriptors), b.encode(descriptors))
    few = descriptors[:5]  # fewer than the 256 centroids: every descriptor gets its own
    quantized = QuantizedDescriptors.fit(few, 16)
    np.testing.assert_allclose(quantized.decode().astype(np.float64) @ few.T, few @ few.T,
                               atol=3e-3)
    assert quantized.quantizer.encode(few[:0]).shape == (0, 16)


@pytest.mark.parametrize("code_bytes", [0, 3, 128])
def test_code_counts_that_do_not_divide_the_dimension_are_refused(code_bytes: int) -> None:
    with pytest.raises(ValueError, match="must divide the descriptor dimension 64"):
        fit_product_quantizer(_clustered_descriptors(300), code_bytes)


def test_corrupt_codec_arrays_are_refused() -> None:
    good = fit_product_quantizer(_clustered_descriptors(500), 16)
    with pytest.raises(ValueError, match="not orthonormal"):
        ProductQuantizer(2.0 * good.rotation_DD, good.centroids_MCS)
    with pytest.raises(ValueError, match="NaN or inf"):
        ProductQuantizer(good.rotation_DD, np.full_like(good.centroids_MCS, np.nan))
    with pytest.raises(ValueError, match=r"\(M, 256, D / M\) centroids"):
        ProductQuantizer(good.rotation_DD, good.centroids_MCS[:, :100])
    with pytest.raises(ValueError, match="float32"):
        ProductQuantizer(good.rotation_DD.astype(np.float64), good.centroids_MCS)
    zero = ProductQuantizer(good.rotation_DD, np.zeros_like(good.centroids_MCS))
    with pytest.raises(ValueError, match="zero-length"):
        zero.decode(np.zeros((3, 16), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"codes must be \(N, 16\) uint8"):
        QuantizedDescriptors(good, np.zeros((3, 8), dtype=np.uint8), 0.99)
    with pytest.raises(ValueError, match=r"fidelity must be in \(0, 1\]"):
        QuantizedDescriptors(good, np.zeros((3, 16), dtype=np.uint8), 1.5)

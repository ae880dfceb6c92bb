"""The fixed MLP case of the mixed-precision golden (no MindSpore import: the tests use it too)."""

import numpy as np

SIZES = (16, 64, 64, 4)
STEPS = 30
SCALE = 1024.0
LR, MOMENTUM = 0.02, 0.9


def make_case():
    """(weights [(w, b)...], batches [(x, y)...]) for the MLP, float32/int32."""
    rng = np.random.default_rng(2026)
    weights = []
    for a, b in zip(SIZES[:-1], SIZES[1:]):
        weights.append(((rng.standard_normal((b, a)) / np.sqrt(a)).astype(np.float32),
                        (rng.standard_normal(b) * 0.1).astype(np.float32)))
    batches = []
    centers = rng.standard_normal((SIZES[-1], SIZES[0])).astype(np.float32) * 0.4
    for _ in range(6):
        y = rng.integers(0, SIZES[-1], 32).astype(np.int32)
        x = (centers[y] + rng.standard_normal((32, SIZES[0]))).astype(np.float32)
        batches.append((x, y))
    return weights, batches

"""Gradients by fourth-order central finite differences: the check on automatic gradients.

``f'(x) ~ (f(x-2h) - 8f(x-h) + 8f(x+h) - f(x+2h)) / 12h`` in each coordinate, with
``h = 1e-3 * max(1, |x|)``: truncation error of order ``h**4`` and rounding error of order
``1e-16 |f| / h``, so about 1e-9 relative on smooth functions, at ``4 * dim + 1``
evaluations per gradient. The NumPy backend computed its gradients this way before it had
autograd; ``python -m benchmarks.numpy_backend`` times the two against each other.

Example
-------
>>> import numpy as np
>>> value, grad = value_and_grad(lambda x: float(np.sum(x**3)))(np.array([1.0, 2.0]))
>>> np.allclose(grad, [3.0, 12.0], rtol=1e-9)
True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from backends import numpy_autodiff

STEPS = (-2.0, -1.0, 1.0, 2.0)
WEIGHTS = (1.0, -8.0, 8.0, -1.0)


def value_and_grad(fn: Callable[[Any], Any]) -> Callable[[Any], tuple[float, Any]]:
    """``fn``'s value and finite-difference gradient with respect to its pytree argument.

    ``fn`` returns a scalar; any backend's arrays are read back as float64.
    """

    def wrapped(tree: Any) -> tuple[float, Any]:
        flat, unravel = numpy_autodiff.ravel_values(tree)
        flat = np.asarray(flat, dtype=np.float64)

        def at(x: Any) -> float:
            return float(np.asarray(fn(unravel(x))))

        grad = np.empty_like(flat)
        for i in range(flat.size):
            h = 1e-3 * max(1.0, abs(float(flat[i])))
            total = 0.0
            for step, weight in zip(STEPS, WEIGHTS, strict=True):
                x = flat.copy()
                x[i] += step * h
                total += weight * at(x)
            grad[i] = total / (12.0 * h)
        return at(flat), unravel(grad)

    return wrapped

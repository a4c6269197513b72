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


def check_potential_gradient(
    model: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], seed: int
) -> tuple[dict[str, Any], Any]:
    """On the NumPy backend: the potential's value and autograd gradient at a random
    unconstrained point (standard normal entries in every latent site's shape) equal the
    finite differences' (the value exactly, the gradient to 1e-6). Returns the point and the
    flat gradient, for the caller's own checks."""
    import minippl
    from minippl import handlers
    from minippl.infer import potential_energy

    backend = minippl.set_backend("numpy")
    try:
        sites = handlers.trace(handlers.seed(model, rng_seed=0)).get_trace(*args, **kwargs)
        rng = np.random.default_rng(seed)
        point = {
            name: rng.normal(size=np.shape(site.value))
            for name, site in sites.items()
            if site.type == "sample" and not site.is_observed
        }

        def potential(params: dict[str, Any]) -> Any:
            return potential_energy(model, args, kwargs, params)

        value, grad = backend.value_and_grad(potential)(point)
        fd_value, fd_grad = value_and_grad(potential)(point)
    finally:
        minippl.set_backend("jax")
    flat, fd_flat = backend.ravel_pytree(grad)[0], backend.ravel_pytree(fd_grad)[0]
    assert float(value) == fd_value
    assert np.isfinite(flat).all()
    np.testing.assert_allclose(flat, fd_flat, rtol=1e-6, atol=1e-6 * np.abs(fd_flat).max())
    return point, flat

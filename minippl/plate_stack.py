"""``plate_stack``: several nested plates in one ``with``, as NumPyro's ``plate_stack``.

Tutorial: "Scaling and masking" (``tutorial/s07_scale_mask.py``), where plates are met.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager

from minippl.primitives import plate


@contextmanager
def plate_stack(prefix: str, sizes: Sequence[int], rightmost_dim: int = -1) -> Iterator[None]:
    """One plate per entry of ``sizes``, so a site inside has batch shape ``tuple(sizes)``.

    Named as NumPyro names them: ``{prefix}_0`` is the rightmost (``sizes[-1]``, at
    ``rightmost_dim``), ``{prefix}_1`` the next to its left, and so on; it is entered first.

    >>> import minippl
    >>> import minippl.distributions as dist
    >>> with minippl.handlers.seed(rng_seed=0), plate_stack("p", (2, 3)):
    ...     x = minippl.sample("x", dist.Normal(0.0, 1.0))
    >>> tuple(x.shape)
    (2, 3)
    """
    with ExitStack() as plates:
        for i, size in enumerate(reversed(sizes)):
            plates.enter_context(plate(f"{prefix}_{i}", size, dim=rightmost_dim - i))
        yield

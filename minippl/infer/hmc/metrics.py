"""The Euclidean metric: kinetic energy, momentum draws and the U-turn test.

Tutorial: "Reparameterization: reparam", where NUTS meets the funnel (``tutorial/s09_reparam.py``).

The mass matrix ``M`` is stored through its inverse (the covariance the warmup estimates) and
is block diagonal: each block is diagonal or dense and covers a group of latent sites. With a
``potential_fn`` and ``dense_mass`` a bool there is one block, stored as a bare array; with a
model (or ``dense_mass`` a list of site-name tuples) the blocks are a dict keyed by those
tuples, as in NumPyro. A :class:`MassLayout` is the static part (which flat positions each
block covers); the arrays live in the sampler state, so the layout can be closed over by a
compiled function while the matrices change during warmup.

References
----------
1. M. Betancourt, "A Conceptual Introduction to Hamiltonian Monte Carlo" (2017), section 4.2
   (Euclidean-Gaussian kinetic energy) and appendix A.4.2 (the generalised U-turn criterion).
2. Stan Development Team, *Stan Reference Manual*, "HMC algorithm parameters / Mass matrix".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from backends import Array, Key
from minippl.backend import current

__all__ = [
    "Block",
    "MassLayout",
    "Metric",
    "blockwise",
    "euclidean_metric",
    "initial_inverse_mass_matrix",
    "make_layout",
    "mass_matrix_factors",
]

BlockKey = tuple[str, ...] | None
"""Names of the sites a block covers (in its order), or ``None`` for the single bare block."""


@dataclass(frozen=True)
class Block:
    """One block on the diagonal of the mass matrix: which flat positions, whether dense."""

    key: BlockKey
    index: Any
    """A NumPy int array of positions in the flat latent vector, or ``None`` for all of them."""
    size: int
    dense: bool

    def take(self, x: Array) -> Array:
        """The entries of flat vector ``x`` that this block covers, in block order."""
        return x if self.index is None else x[self.index]


@dataclass(frozen=True)
class MassLayout:
    """The static structure of a block-diagonal mass matrix over a flat latent vector."""

    blocks: tuple[Block, ...]
    size: int
    keyed: bool
    """True when the matrices are a dict keyed by site-name tuples, False for one bare array."""
    inverse_order: Any
    """Permutation taking the blocks' concatenation back to flat order (``None``: identity)."""

    def assemble(self, parts: Sequence[Array]) -> Array:
        """The flat vector whose blocks are ``parts`` (one per block, in block order)."""
        xp = current().xp
        if not parts:  # no latent values at all
            return xp.zeros((0,), dtype=current().float_dtype())
        if len(parts) == 1 and self.inverse_order is None:
            return parts[0]
        joined = xp.concatenate(list(parts))
        return joined if self.inverse_order is None else joined[self.inverse_order]


def _size(tree: Any) -> int:
    """The number of elements in a pytree of arrays (the length of its raveled form)."""
    return sum(int(np.size(leaf)) for leaf in current().tree_flatten(tree)[0])


def make_layout(
    z: Any, dense_mass: bool | Sequence[tuple[str, ...]], given: Any = None
) -> MassLayout:
    """The block structure for latent values ``z`` (a pytree; a dict when blocks are named).

    Parameters
    ----------
    z : prototype latent values; only shapes are read.
    dense_mass : ``True``/``False`` for one dense/diagonal block, or a list of site-name
        tuples, each a dense block; the sites not named are gathered in one diagonal block
        (NumPyro's convention).
    given : a user-supplied ``inverse_mass_matrix``; in the keyed form its own blocks that
        ``dense_mass`` does not name become diagonal blocks, and a bare array stands for
        the block of all sites.
    """
    # Sizes from shapes, not from raveling: on JAX every eager op is a program to compile.
    size = _size(z)
    if isinstance(dense_mass, bool):
        return MassLayout((Block(None, None, size, dense_mass),), size, False, None)
    if not isinstance(z, Mapping):
        raise ValueError("a list `dense_mass` needs latent values given as a dict of sites")
    offsets: dict[str, np.ndarray] = {}
    start = 0
    for name in sorted(z):
        n = _size(z[name])
        offsets[name] = np.arange(start, start + n)
        start += n
    groups: dict[tuple[str, ...], bool] = {tuple(g): True for g in dense_mass}
    if given is not None and not isinstance(given, Mapping):
        given = {tuple(sorted(z)): given}
    if isinstance(given, Mapping):
        for names in given:
            groups.setdefault(tuple(names), False)
    covered = {name for names in groups for name in names}
    rest = tuple(sorted(set(z) - covered))
    if rest:
        groups[rest] = False
    named = sorted(name for names in groups for name in names)
    if named != sorted(z):
        raise ValueError(
            f"the mass-matrix blocks {sorted(groups)} must cover each latent site of "
            f"{sorted(z)} exactly once (check `dense_mass` and `inverse_mass_matrix`)"
        )
    blocks = []
    for names in sorted(groups):
        index = np.concatenate([offsets[name] for name in names]).astype(np.int64)
        blocks.append(Block(names, index, int(index.size), groups[names]))
    perm = np.concatenate([b.index for b in blocks]) if blocks else np.zeros(0, np.int64)
    identity = bool(np.array_equal(perm, np.arange(size)))
    if identity and len(blocks) == 1:
        blocks = [Block(blocks[0].key, None, size, blocks[0].dense)]
    inverse_order = None if identity else np.argsort(perm)
    return MassLayout(tuple(blocks), size, True, inverse_order)


def blockwise(layout: MassLayout, fn: Callable[..., Any], *trees: Any) -> Any:
    """Apply ``fn(block, *values)`` per block to per-block structures (bare or keyed)."""
    if not layout.keyed:
        return fn(layout.blocks[0], *trees)
    return {b.key: fn(b, *(t[b.key] for t in trees)) for b in layout.blocks}


def initial_inverse_mass_matrix(layout: MassLayout, given: Any = None) -> Any:
    """The starting inverse mass matrix: the identity, or ``given`` cast to each block's kind.

    A dense block given as a vector becomes its diagonal matrix; a diagonal block given as a
    matrix keeps its diagonal. A bare array given for a keyed layout covers all sites.
    """
    xp = current().xp
    dtype = current().float_dtype()

    def one(block: Block, value: Any) -> Array:
        if value is None:
            ones = xp.ones(block.size, dtype=dtype)
            return xp.diag(ones) if block.dense else ones
        value = xp.asarray(value, dtype=dtype)
        if block.dense:
            return xp.diag(value) if value.ndim == 1 else value
        return xp.diag(value) if value.ndim == 2 else value

    if not layout.keyed:
        return one(layout.blocks[0], given)
    if given is not None and not isinstance(given, Mapping):
        given = {tuple(sorted(n for b in layout.blocks for n in (b.key or ()))): given}
    given = {} if given is None else {tuple(k): v for k, v in given.items()}
    return {b.key: one(b, given.get(b.key)) for b in layout.blocks}


def mass_matrix_factors(inverse_mass_matrix: Array) -> tuple[Array, Array]:
    """``(mass_matrix_sqrt, mass_matrix_sqrt_inv)`` of one block, from its inverse ``C``.

    Dense: ``mass_matrix_sqrt`` is the lower Cholesky factor ``L`` of ``M = C^-1``, found
    without inverting ``C``: with ``U`` upper triangular and ``U U^T = C`` (a Cholesky of ``C``
    with rows and columns reversed), ``L = U^-T``. Momenta ``L @ eps`` then have covariance M.
    Diagonal: ``1/sqrt(C)`` and ``sqrt(C)``.
    """
    bk = current()
    xp = bk.xp
    if inverse_mass_matrix.ndim == 1:
        sqrt_inv = xp.sqrt(inverse_mass_matrix)
        return 1.0 / sqrt_inv, sqrt_inv
    flipped = bk.cholesky(inverse_mass_matrix[::-1, ::-1])[::-1, ::-1]
    sqrt_inv = xp.swapaxes(flipped, -2, -1)
    eye = xp.eye(inverse_mass_matrix.shape[-1], dtype=inverse_mass_matrix.dtype)
    # Substitution on the triangular factor: a general solve would factorise it again (LU
    # with pivoting), cubic work that the Cholesky factor has already done.
    return bk.solve_triangular(sqrt_inv, eye, lower=True), sqrt_inv


class Metric(NamedTuple):
    """What a sampler asks of its metric, closed over the current mass matrix.

    The last three let a trajectory compute ``M^-1 r`` once per leaf: a leaf's kinetic
    energy and every U-turn test it takes part in reuse it (with a dense ``M`` each
    ``M^-1 r`` is a matrix-vector product, the dearest part of a step after the gradient).
    """

    sample_momentum: Callable[[Key], Array]
    kinetic_energy: Callable[[Array], Array]
    velocity: Callable[[Array], Array]
    """``dK/dr``: where a momentum moves the position."""
    is_turning: Callable[[Array, Array, Array], Array]
    """``(r_left, r_right, r_sum) -> bool``: has the trajectory between them turned back?"""
    turning_velocity: Callable[[Array], Array]
    """``r -> M^-1 r`` with its blocks in layout order: what the U-turn test projects."""
    kinetic_energy_with: Callable[[Array, Array], Array]
    """``(r, turning_velocity(r)) -> K(r)`` without a second ``M^-1 r``."""
    is_turning_with: Callable[[Array, Array, Array, Array, Array], Array]
    """``(v_left, v_right, r_left, r_right, r_sum)``: :attr:`is_turning` given the two
    ends' ``turning_velocity``."""


def _apply(block: Block, matrix: Array, r: Array) -> Array:
    xp = current().xp
    return xp.matmul(matrix, r) if block.dense else matrix * r


class _Blocks:
    """The Euclidean metric's arithmetic, block by block, for one set of mass matrices."""

    def __init__(self, layout: MassLayout, inverse_mass_matrix: Any, mass_matrix_sqrt: Any):
        self.layout = layout
        self.blocks = layout.blocks
        self.inv = self._matrices(inverse_mass_matrix)
        self.sqrt = self._matrices(mass_matrix_sqrt)
        # Static offsets of the blocks in the layout-order concatenation of their velocities.
        self.offsets = [sum(b.size for b in self.blocks[:i]) for i in range(len(self.blocks))]

    def _matrices(self, tree: Any) -> list[Array]:
        return [tree] if not self.layout.keyed else [tree[b.key] for b in self.blocks]

    def sample_momentum(self, key: Key) -> Array:
        bk = current()
        blocks = self.blocks
        if not self.layout.keyed:
            eps = bk.normal(key, (blocks[0].size,))
            return _apply(blocks[0], self.sqrt[0], eps)
        keys = bk.split(key, len(blocks))
        parts = [
            _apply(b, s, bk.normal(keys[i], (b.size,)))
            for i, (b, s) in enumerate(zip(blocks, self.sqrt, strict=True))
        ]
        return self.layout.assemble(parts)

    def angle(self, v: list[Array], rho: Array) -> Array:
        """``v . rho`` summed block by block (``v`` already in block order)."""
        xp = current().xp
        if len(self.blocks) == 1:
            return xp.dot(v[0], self.blocks[0].take(rho))
        total = xp.zeros((), dtype=rho.dtype)
        for b, vb in zip(self.blocks, v, strict=True):
            total = total + xp.dot(vb, b.take(rho))
        return total

    def block_velocities(self, r: Array) -> list[Array]:
        return [_apply(b, m, b.take(r)) for b, m in zip(self.blocks, self.inv, strict=True)]

    def split(self, v: Array) -> list[Array]:
        """A layout-order concatenation of velocities, cut back into its blocks."""
        if len(self.blocks) == 1:
            return [v]
        return [v[o : o + b.size] for o, b in zip(self.offsets, self.blocks, strict=True)]

    def turning_velocity(self, r: Array) -> Array:
        parts = self.block_velocities(r)
        if not parts:  # a model with no latent values: r is empty
            return r
        return parts[0] if len(parts) == 1 else current().xp.concatenate(parts)

    def velocity(self, r: Array) -> Array:
        return self.layout.assemble(self.block_velocities(r))

    def kinetic_energy(self, r: Array) -> Array:
        return 0.5 * self.angle(self.block_velocities(r), r)

    def kinetic_energy_with(self, r: Array, v: Array) -> Array:
        return 0.5 * self.angle(self.split(v), r)

    def is_turning_with(
        self, v_left: Array, v_right: Array, r_left: Array, r_right: Array, r_sum: Array
    ) -> Array:
        # Betancourt (2017) A.4.2: has either end's velocity turned against rho, the
        # trajectory's displacement? rho is the trapezoid rule over the leaves' momenta
        # (each end counted half), NumPyro's choice.
        rho = r_sum - (r_left + r_right) / 2
        left = self.angle(self.split(v_left), rho)
        right = self.angle(self.split(v_right), rho)
        return (left <= 0) | (right <= 0)

    def is_turning(self, r_left: Array, r_right: Array, r_sum: Array) -> Array:
        v_left, v_right = self.turning_velocity(r_left), self.turning_velocity(r_right)
        return self.is_turning_with(v_left, v_right, r_left, r_right, r_sum)


def euclidean_metric(
    layout: MassLayout,
    inverse_mass_matrix: Any,
    mass_matrix_sqrt: Any,
    kinetic_fn: Callable[[Any, Any], Array] | None = None,
    unravel: Callable[[Array], Any] | None = None,
) -> Metric:
    """The metric of ``K(r) = r^T M^-1 r / 2`` (or a user ``kinetic_fn``) for one transition.

    Parameters
    ----------
    layout : the block structure.
    inverse_mass_matrix, mass_matrix_sqrt : per-block arrays (bare or keyed as ``layout``).
    kinetic_fn : NumPyro's ``kinetic_fn(inverse_mass_matrix, r)`` on the momentum pytree;
        its gradient gives the velocity. Momenta are still Gaussian and the U-turn test still
        uses ``M^-1 r``, as in NumPyro.
    unravel : flat vector to pytree, needed with ``kinetic_fn``.
    """
    m = _Blocks(layout, inverse_mass_matrix, mass_matrix_sqrt)
    if kinetic_fn is None:
        return Metric(
            m.sample_momentum,
            m.kinetic_energy,
            m.velocity,
            m.is_turning,
            m.turning_velocity,
            m.kinetic_energy_with,
            m.is_turning_with,
        )
    if unravel is None:
        raise ValueError("a custom `kinetic_fn` needs the `unravel` of the latent pytree")
    to_tree = unravel
    bk = current()

    def custom_kinetic_energy(r: Array) -> Array:
        return kinetic_fn(inverse_mass_matrix, to_tree(r))

    grad_r = bk.grad(kinetic_fn, argnums=1)

    def custom_velocity(r: Array) -> Array:
        return bk.ravel_pytree(grad_r(inverse_mass_matrix, to_tree(r)))[0]

    def custom_kinetic_energy_with(r: Array, v: Array) -> Array:
        return custom_kinetic_energy(r)

    return Metric(
        m.sample_momentum,
        custom_kinetic_energy,
        custom_velocity,
        m.is_turning,
        m.turning_velocity,
        custom_kinetic_energy_with,
        m.is_turning_with,
    )

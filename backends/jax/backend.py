"""The JAX backend: compiled (``jit``), vectorised (``vmap``) and on any JAX device.

Every draw is the ``jax.random`` call NumPyro makes for the same distribution, so the same
key gives the same number, bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

import jax
import jax.numpy as jnp
import jax.scipy.linalg
import jax.scipy.special as jss
import numpy as np
from jax.flatten_util import ravel_pytree as _ravel_pytree

from backends.host_threads import run_on_threads, usable_cores
from backends.jax.compiler import JaxCompiler
from backends.jax.control_flow import apply_if_as_loop, cond_with_flat_matrices
from backends.jax.fused import FUSED
from backends.protocol import Array, Compiler, Key, PyTree, Shape

_FAST_COMPILE = {
    "xla_backend_optimization_level": 0,
    "xla_llvm_disable_expensive_passes": True,
    "xla_cpu_use_fusion_emitters": False,
}
"""XLA options for a program that runs once: on a CPU they cut the compile time of the
chains' initialisation about tenfold (the linear regression's). The last
one picks XLA's older CPU code generator over its MLIR fusion emitters, which compiles in
about half the time and runs slower only on loops over thousands of elements; it halves
what the first two leave. (A GPU ignores them.)"""


_REGISTERED: set[type] = set()
"""The classes this process has registered with ``jax.tree_util``."""


class JaxBackend:
    """:class:`backends.protocol.Backend` on JAX."""

    name = "jax"
    xp: Any = jnp
    special: Any = jss
    fused: dict[str, Any] = FUSED
    """Formulas of the core computed with a cheaper derivative (``backends/jax/fused.py``)."""

    def __init__(self) -> None:
        self._compiler = JaxCompiler(self)

    # -- dtypes and arrays -------------------------------------------------------------
    def float_dtype(self) -> Any:
        x64 = jax.config.read("jax_enable_x64")  # type: ignore[no-untyped-call]
        return jnp.float64 if x64 else jnp.float32

    def is_tracer(self, x: object) -> bool:
        return isinstance(x, jax.core.Tracer)

    def is_concrete(self, x: object) -> bool:
        return not isinstance(x, jax.core.Tracer)

    def to_numpy(self, x: Array) -> Any:
        return np.asarray(x)

    def index_update(self, x: Array, index: Any, value: Array) -> Array:
        return jnp.asarray(x).at[index].set(value)

    def stop_gradient(self, x: Array) -> Array:
        return jax.lax.stop_gradient(x)

    def eager(self) -> AbstractContextManager[None]:
        return jax.ensure_compile_time_eval()

    def enable_x64(self, use_x64: bool = True) -> None:
        jax.config.update("jax_enable_x64", use_x64)  # type: ignore[no-untyped-call]

    def set_host_device_count(self, n: int) -> None:
        # Only takes effect before JAX starts its CPU client, as in NumPyro.
        jax.config.update("jax_num_cpu_devices", n)  # type: ignore[no-untyped-call]

    def device_count(self) -> int:
        return jax.device_count()

    def concurrent_programs(self) -> int:
        """The usable cores of a CPU, each running a program called from a thread of its own;
        1 on a GPU or TPU (one stream per device: concurrent calls would queue)."""
        if jax.default_backend() != "cpu":
            return 1
        return usable_cores()

    def run_side_by_side(
        self,
        jobs: Sequence[Callable[[Callable[[Any], None]], Any]],
        workers: int,
        report: Callable[[Any], None],
    ) -> list[Any]:
        return run_on_threads(jobs, workers, report)

    # -- linear algebra -----------------------------------------------------------------
    def cholesky(self, a: Array) -> Array:
        return jnp.linalg.cholesky(a)

    def solve_triangular(self, a: Array, b: Array, lower: bool) -> Array:
        return jax.scipy.linalg.solve_triangular(a, b, lower=lower)

    # -- keys ---------------------------------------------------------------------------
    def key(self, seed: int) -> Key:
        return jax.random.key(seed)

    def is_key(self, x: object) -> bool:
        dtype = getattr(x, "dtype", None)
        if dtype is None:
            return False
        if jnp.issubdtype(dtype, jax.dtypes.prng_key):
            return True
        # Raw ``PRNGKey`` arrays: uint32 with a trailing axis of 2.
        return bool(dtype == jnp.uint32 and tuple(getattr(x, "shape", ()))[-1:] == (2,))

    def split(self, key: Key, num: int = 2) -> Key:
        return jax.random.split(key, num)

    # -- draws --------------------------------------------------------------------------
    def _dtype(self, dtype: Any) -> Any:
        return self.float_dtype() if dtype is None else dtype

    def normal(self, key: Key, shape: Shape, dtype: Any = None) -> Array:
        return jax.random.normal(key, shape, self._dtype(dtype))

    def uniform(
        self, key: Key, shape: Shape, dtype: Any = None, minval: Any = 0.0, maxval: Any = 1.0
    ) -> Array:
        return jax.random.uniform(key, shape, self._dtype(dtype), minval, maxval)

    def exponential(self, key: Key, shape: Shape, dtype: Any = None) -> Array:
        return jax.random.exponential(key, shape, self._dtype(dtype))

    def cauchy(self, key: Key, shape: Shape, dtype: Any = None) -> Array:
        return jax.random.cauchy(key, shape, self._dtype(dtype))

    def laplace(self, key: Key, shape: Shape, dtype: Any = None) -> Array:
        return jax.random.laplace(key, shape, self._dtype(dtype))

    def logistic(self, key: Key, shape: Shape, dtype: Any = None) -> Array:
        return jax.random.logistic(key, shape, self._dtype(dtype))

    def gumbel(self, key: Key, shape: Shape, dtype: Any = None) -> Array:
        return jax.random.gumbel(key, shape, self._dtype(dtype))

    def weibull_min(
        self, key: Key, scale: Array, concentration: Array, shape: Shape, dtype: Any = None
    ) -> Array:
        return jax.random.weibull_min(key, scale, concentration, shape, self._dtype(dtype))

    def gamma(self, key: Key, a: Array, shape: Shape, dtype: Any = None) -> Array:
        return jax.random.gamma(key, a, shape, self._dtype(dtype))

    def dirichlet(self, key: Key, alpha: Array, shape: Shape, dtype: Any = None) -> Array:
        return jax.random.dirichlet(key, alpha, shape, self._dtype(dtype))

    def bernoulli(self, key: Key, p: Array, shape: Shape) -> Array:
        return jax.random.bernoulli(key, p, shape)

    def categorical(self, key: Key, logits: Array, shape: Shape) -> Array:
        return jax.random.categorical(key, logits, axis=-1, shape=shape)

    def poisson(self, key: Key, lam: Array, shape: Shape) -> Array:
        return jax.random.poisson(key, lam, shape)

    def binomial(self, key: Key, n: Array, p: Array, shape: Shape) -> Array:
        return jax.random.binomial(key, n, p, shape)

    def randint(self, key: Key, shape: Shape, minval: int, maxval: int) -> Array:
        return jax.random.randint(key, shape, minval, maxval)

    # -- derivatives and program transformations --------------------------------------
    def value_and_grad(
        self, fn: Callable[..., Any], argnums: int = 0, has_aux: bool = False
    ) -> Callable[..., Any]:
        return jax.value_and_grad(fn, argnums=argnums, has_aux=has_aux)

    def grad(self, fn: Callable[..., Any], argnums: int = 0) -> Callable[..., Any]:
        return jax.grad(fn, argnums=argnums)

    def jit(
        self,
        fn: Callable[..., Any],
        static_argnums: Sequence[int] = (),
        donate_argnums: Sequence[int] = (),
        optimize: bool = True,
    ) -> Callable[..., Any]:
        return jax.jit(
            fn,
            static_argnums=tuple(static_argnums),
            donate_argnums=tuple(donate_argnums),
            compiler_options=None if optimize else _FAST_COMPILE,
        )

    def vmap(
        self, fn: Callable[..., Any], in_axes: Any = 0, out_axes: Any = 0
    ) -> Callable[..., Any]:
        return jax.vmap(fn, in_axes=in_axes, out_axes=out_axes)

    def cond(
        self, pred: Any, true_fn: Callable[..., Any], false_fn: Callable[..., Any], *operands: Any
    ) -> Any:
        return cond_with_flat_matrices(pred, true_fn, false_fn, operands)

    def while_loop(
        self, cond_fn: Callable[[Any], Any], body_fn: Callable[[Any], Any], init: Any
    ) -> Any:
        return jax.lax.while_loop(cond_fn, body_fn, init)

    def apply_if(self, pred: Any, fn: Callable[[Any], Any], state: Any) -> Any:
        return apply_if_as_loop(pred, fn, state)

    def fori_loop(
        self, lower: int, upper: int, body_fn: Callable[[Any, Any], Any], init: Any
    ) -> Any:
        return jax.lax.fori_loop(lower, upper, body_fn, init)

    def scan(
        self,
        fn: Callable[[Any, Any], tuple[Any, Any]],
        init: Any,
        xs: Any = None,
        length: int | None = None,
    ) -> tuple[Any, Any]:
        return jax.lax.scan(fn, init, xs, length)

    # -- running chains: devices, programs, waiting --------------------------------------
    def compiler(self) -> Compiler:
        """:class:`backends.jax.compiler.JaxCompiler`: stored programs, loading ahead,
        compiling ahead, and loops shaped for XLA's CPU compiler."""
        return self._compiler

    def shard_over_devices(
        self,
        fn: Callable[..., Any],
        num_devices: int,
        in_axes: Sequence[int | None],
        donate_argnums: Sequence[int] = (),
        optimize: bool = True,
    ) -> Callable[..., Any]:
        # shard_map runs ``fn`` on each device's block as one program: chains on different
        # devices never wait for each other (a sharded vmap would synchronise every
        # while-loop step across devices).
        from jax.sharding import PartitionSpec

        mesh = self._chain_mesh(num_devices)
        specs = tuple(
            PartitionSpec("chains") if ax == 0 else PartitionSpec()  # type: ignore[no-untyped-call]
            for ax in in_axes
        )
        sharded = jax.shard_map(
            fn,
            mesh=mesh,
            in_specs=specs,
            out_specs=PartitionSpec("chains"),  # type: ignore[no-untyped-call]
            check_vma=False,
        )
        return self.jit(sharded, donate_argnums=donate_argnums, optimize=optimize)

    def distribute(self, tree: PyTree, num_devices: int) -> PyTree:
        from jax.sharding import NamedSharding, PartitionSpec

        chains = PartitionSpec("chains")  # type: ignore[no-untyped-call]
        sharding = NamedSharding(self._chain_mesh(num_devices), chains)
        leaves, treedef = jax.tree_util.tree_flatten(tree)
        # Only what is not in place yet: jax.device_put takes ~0.1 ms a leaf even for a
        # leaf already there, and a chain's state is dozens of leaves.
        away = [i for i, x in enumerate(leaves) if getattr(x, "sharding", None) != sharding]
        if away:
            placed = jax.device_put([leaves[i] for i in away], sharding)
            for i, x in zip(away, placed, strict=True):
                leaves[i] = x
        return jax.tree_util.tree_unflatten(treedef, leaves)

    def _chain_mesh(self, num_devices: int) -> Any:
        from jax.sharding import Mesh

        return Mesh(np.array(jax.devices()[:num_devices]), ("chains",))

    def eval_shape(self, fn: Callable[..., Any], *args: Any) -> PyTree:
        from backends.jax.stored_programs import StoredProgram

        if isinstance(fn, StoredProgram):
            # Its jitted function's trace, which compiling it will reuse.
            fn = fn.jitted
        return jax.eval_shape(fn, *args)

    def block_until_ready(self, tree: PyTree) -> PyTree:
        return jax.block_until_ready(tree)  # type: ignore[no-untyped-call]

    # -- pytrees ------------------------------------------------------------------------
    def tree_map(self, fn: Callable[..., Any], tree: PyTree, *rest: PyTree) -> PyTree:
        return jax.tree_util.tree_map(fn, tree, *rest)

    def select(self, pred: Any, on_true: PyTree, on_false: PyTree) -> PyTree:
        return jax.tree_util.tree_map(lambda x, y: jnp.where(pred, x, y), on_true, on_false)

    def tree_flatten(self, tree: PyTree) -> tuple[list[Any], Any]:
        leaves, treedef = jax.tree_util.tree_flatten(tree)
        return list(leaves), treedef

    def tree_unflatten(self, treedef: Any, leaves: Sequence[Any]) -> PyTree:
        return jax.tree_util.tree_unflatten(treedef, list(leaves))

    def ravel_pytree(self, tree: PyTree) -> tuple[Array, Callable[[Array], PyTree]]:
        flat, unravel = _ravel_pytree(tree)
        return flat, unravel

    def register_pytree_class(
        self,
        cls: type,
        flatten: Callable[[Any], tuple[Sequence[Any], Any]],
        unflatten: Callable[[Any, Sequence[Any]], Any],
    ) -> None:
        # JAX's registry is one per process and refuses a class twice; a second backend
        # object (or a repeated call) finds the class already there.
        if cls not in _REGISTERED:
            jax.tree_util.register_pytree_node(cls, flatten, unflatten)
            _REGISTERED.add(cls)

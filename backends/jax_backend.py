"""The JAX backend: compiled (``jit``), vectorised (``vmap``) and on any JAX device.

Every draw is the ``jax.random`` call NumPyro makes for the same distribution, so the same
key gives the same number, bit for bit.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import jax.scipy.linalg
import jax.scipy.special as jss
import numpy as np
from jax.flatten_util import ravel_pytree as _ravel_pytree

from backends.jax_control_flow import apply_if_as_loop, cond_with_flat_matrices
from backends.protocol import Array, Key, PyTree, Shape

_FAST_COMPILE = {
    "xla_backend_optimization_level": 0,
    "xla_llvm_disable_expensive_passes": True,
    "xla_cpu_use_fusion_emitters": False,
}
"""XLA options for a program that runs once: on a CPU they cut the compile time of the
chains' initialisation about tenfold (6.3 s to 0.6 s for the linear regression). The last
one picks XLA's older CPU code generator over its MLIR fusion emitters, which compiles in
about half the time and runs slower only on loops over thousands of elements; it halves
what the first two leave. (A GPU ignores them.)"""


class JaxBackend:
    """:class:`backends.protocol.Backend` on JAX."""

    name = "jax"
    xp: Any = jnp
    special: Any = jss

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

    def enable_x64(self, use_x64: bool = True) -> None:
        jax.config.update("jax_enable_x64", use_x64)  # type: ignore[no-untyped-call]

    def set_host_device_count(self, n: int) -> None:
        # Only takes effect before JAX starts its CPU client, as in NumPyro.
        jax.config.update("jax_num_cpu_devices", n)  # type: ignore[no-untyped-call]

    def device_count(self) -> int:
        return jax.device_count()

    def compiles_for_cpu(self) -> bool:
        return jax.default_backend() == "cpu"

    def concurrent_programs(self) -> int:
        if jax.default_backend() != "cpu":
            return 1  # one stream per device: concurrent calls would queue
        cores = getattr(os, "sched_getaffinity", None)
        return len(cores(0)) if cores is not None else os.cpu_count() or 1

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

    def fold_in(self, key: Key, data: int) -> Key:
        return jax.random.fold_in(key, data)

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

    def t(self, key: Key, df: Array, shape: Shape, dtype: Any = None) -> Array:
        return jax.random.t(key, df, shape, self._dtype(dtype))

    def weibull_min(
        self, key: Key, scale: Array, concentration: Array, shape: Shape, dtype: Any = None
    ) -> Array:
        return jax.random.weibull_min(key, scale, concentration, shape, self._dtype(dtype))

    def gamma(self, key: Key, a: Array, shape: Shape, dtype: Any = None) -> Array:
        return jax.random.gamma(key, a, shape, self._dtype(dtype))

    def beta(self, key: Key, a: Array, b: Array, shape: Shape, dtype: Any = None) -> Array:
        return jax.random.beta(key, a, b, shape, self._dtype(dtype))

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

    def permutation(self, key: Key, n: int) -> Array:
        return jax.random.permutation(key, n)

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

    def callback(self, fn: Callable[..., None], *args: Any) -> None:
        jax.debug.callback(fn, *args, ordered=False)

    # -- running chains: devices, compiled-code cache, waiting ---------------------------
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

    _cache_dir_set: str | None = None

    def enable_compilation_cache(self, path: str | None) -> None:
        configured = jax.config.jax_compilation_cache_dir  # type: ignore[attr-defined]
        if configured and configured != self._cache_dir_set:
            return  # the user pointed JAX's cache somewhere themselves: leave it there
        jax.config.update("jax_compilation_cache_dir", path)  # type: ignore[no-untyped-call]
        self._cache_dir_set = path
        if path is not None:
            # Keep every program, however quick to compile or small: a sampler's start-up
            # is many small programs, and all of them count.
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)  # type: ignore[no-untyped-call]
            jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)  # type: ignore[no-untyped-call]

    def can_store_programs(self) -> bool:
        # A stored program's key does not say how its arguments lie over several devices.
        return jax.device_count() == 1

    def stored_program(
        self,
        name: str,
        jitted: Callable[..., Any],
        folder: Path,
        describe: Callable[[tuple[Any, ...]], Any],
        on_load: Callable[[], None],
    ) -> Callable[..., Any]:
        from backends.jax_programs import StoredProgram  # loads JAX's serialization lazily

        return StoredProgram(name, jitted, folder, describe, on_load)

    def expect_programs(self, folder: Path, hint: str) -> Callable[[], None]:
        from backends.jax_programs import expect_programs

        return expect_programs(folder, hint)

    def program_ready(self, program: Callable[..., Any], *args: Any) -> bool:
        from backends.jax_programs import StoredProgram

        return isinstance(program, StoredProgram) and program.ready(*args)

    def compile_ahead(
        self, program: Callable[..., Any], args: Callable[[], tuple[Any, ...]]
    ) -> Callable[[], None]:
        from backends.jax_programs import compile_ahead

        return compile_ahead(program, args)

    def function_digest(self, fn: Callable[..., Any], *args: Any) -> str:
        from backends.jax_programs import jaxpr_digest

        return jaxpr_digest(fn, *args)

    def row_shapes(self, tree: PyTree) -> PyTree:
        from backends.jax_programs import rows

        return rows(tree)

    def eval_shape(self, fn: Callable[..., Any], *args: Any) -> PyTree:
        from backends.jax_programs import StoredProgram

        if isinstance(fn, StoredProgram):
            # Its jitted function's trace, which compiling it will reuse.
            fn = fn.jitted
        return jax.eval_shape(fn, *args)

    def block_until_ready(self, tree: PyTree) -> PyTree:
        return jax.block_until_ready(tree)  # type: ignore[no-untyped-call]

    # -- pytrees ------------------------------------------------------------------------
    def tree_map(self, fn: Callable[..., Any], tree: PyTree, *rest: PyTree) -> PyTree:
        return jax.tree_util.tree_map(fn, tree, *rest)

    def tree_flatten(self, tree: PyTree) -> tuple[list[Any], Any]:
        leaves, treedef = jax.tree_util.tree_flatten(tree)
        return list(leaves), treedef

    def tree_unflatten(self, treedef: Any, leaves: Sequence[Any]) -> PyTree:
        return jax.tree_util.tree_unflatten(treedef, list(leaves))

    def ravel_pytree(self, tree: PyTree) -> tuple[Array, Callable[[Array], PyTree]]:
        flat, unravel = _ravel_pytree(tree)
        return flat, unravel

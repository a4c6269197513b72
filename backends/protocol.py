"""The one seam between minippl's core and an array library.

Everything in ``minippl/`` that touches numbers goes through an object satisfying
:class:`Backend`: an array namespace (``xp``, NumPy's API), special functions, splittable
PRNG keys and the draws made from them, gradients, and the program transformations that
let one source run compiled on JAX and eagerly on NumPy (``jit``, ``vmap``, ``cond``,
``while_loop``, ``fori_loop``, ``scan``).

A third backend implements this protocol and registers itself under the
``minippl.backends`` entry-point group; the core never names a backend.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

Array = Any
"""An array of the active backend (a ``numpy.ndarray`` or a ``jax.Array``)."""

Key = Any
"""A PRNG key of the active backend; ``split`` returns a stack of them."""

PyTree = Any
"""Nested dicts, lists, tuples and NamedTuples whose leaves are arrays."""

Shape = tuple[int, ...]


@runtime_checkable
class Backend(Protocol):
    """What the core needs from an array library.

    Draw functions take the key first and a ``shape`` that is the full output shape, as in
    ``jax.random``; parameters broadcast against it.
    """

    name: str
    xp: Any
    """Array namespace with NumPy's API (``numpy`` or ``jax.numpy``)."""
    special: Any
    """Special functions with ``scipy.special``'s names (gammaln, digamma, xlogy, ...)."""

    # -- dtypes and arrays -------------------------------------------------------------
    def float_dtype(self) -> Any: ...
    def is_tracer(self, x: object) -> bool: ...
    def is_concrete(self, x: object) -> bool: ...
    def to_numpy(self, x: Array) -> Any: ...
    def index_update(self, x: Array, index: Any, value: Array) -> Array: ...
    def stop_gradient(self, x: Array) -> Array: ...
    def enable_x64(self, use_x64: bool = True) -> None: ...
    def set_host_device_count(self, n: int) -> None: ...
    def device_count(self) -> int: ...

    def compiles_for_cpu(self) -> bool:
        """Whether programs are compiled to run on a CPU (JAX on CPU; not NumPy, which
        compiles nothing, nor GPUs and TPUs, where every trip of a ``while`` loop reads its
        predicate back to the host)."""
        ...

    def concurrent_programs(self) -> int:
        """How many compiled programs gain from running at once on one device, each called
        from its own host thread: the cores of a CPU (each call runs on its caller's thread),
        1 where calls queue on the device (GPU, TPU) or hold Python's lock (NumPy)."""
        ...

    # -- linear algebra -----------------------------------------------------------------
    def cholesky(self, a: Array) -> Array:
        """The lower-triangular ``L`` with ``L @ L.T == a`` (``a`` symmetric positive definite)."""
        ...

    def solve_triangular(self, a: Array, b: Array, lower: bool) -> Array:
        """``x`` with ``a @ x == b`` for triangular ``a`` (lower or upper), by substitution:
        no factorisation, unlike ``xp.linalg.solve``."""
        ...

    # -- keys ---------------------------------------------------------------------------
    def key(self, seed: int) -> Key: ...
    def is_key(self, x: object) -> bool: ...
    def split(self, key: Key, num: int = 2) -> Key: ...
    def fold_in(self, key: Key, data: int) -> Key: ...

    # -- draws --------------------------------------------------------------------------
    def normal(self, key: Key, shape: Shape, dtype: Any = None) -> Array: ...
    def uniform(
        self, key: Key, shape: Shape, dtype: Any = None, minval: Any = 0.0, maxval: Any = 1.0
    ) -> Array: ...
    def exponential(self, key: Key, shape: Shape, dtype: Any = None) -> Array: ...
    def cauchy(self, key: Key, shape: Shape, dtype: Any = None) -> Array: ...
    def laplace(self, key: Key, shape: Shape, dtype: Any = None) -> Array: ...
    def logistic(self, key: Key, shape: Shape, dtype: Any = None) -> Array: ...
    def gumbel(self, key: Key, shape: Shape, dtype: Any = None) -> Array: ...
    def t(self, key: Key, df: Array, shape: Shape, dtype: Any = None) -> Array: ...
    def weibull_min(
        self, key: Key, scale: Array, concentration: Array, shape: Shape, dtype: Any = None
    ) -> Array: ...
    def gamma(self, key: Key, a: Array, shape: Shape, dtype: Any = None) -> Array: ...
    def beta(self, key: Key, a: Array, b: Array, shape: Shape, dtype: Any = None) -> Array: ...
    def dirichlet(self, key: Key, alpha: Array, shape: Shape, dtype: Any = None) -> Array: ...
    def bernoulli(self, key: Key, p: Array, shape: Shape) -> Array: ...
    def categorical(self, key: Key, logits: Array, shape: Shape) -> Array: ...
    def poisson(self, key: Key, lam: Array, shape: Shape) -> Array: ...
    def binomial(self, key: Key, n: Array, p: Array, shape: Shape) -> Array: ...
    def randint(self, key: Key, shape: Shape, minval: int, maxval: int) -> Array: ...
    def permutation(self, key: Key, n: int) -> Array: ...

    # -- derivatives and program transformations --------------------------------------
    def value_and_grad(
        self, fn: Callable[..., Any], argnums: int = 0, has_aux: bool = False
    ) -> Callable[..., Any]: ...
    def grad(self, fn: Callable[..., Any], argnums: int = 0) -> Callable[..., Any]: ...
    # ``optimize=False`` is for a program that runs once (finding starting points): there,
    # the compiler's time is what the user waits for, not the program's.
    def jit(
        self,
        fn: Callable[..., Any],
        static_argnums: Sequence[int] = (),
        donate_argnums: Sequence[int] = (),
        optimize: bool = True,
    ) -> Callable[..., Any]: ...
    def vmap(
        self, fn: Callable[..., Any], in_axes: Any = 0, out_axes: Any = 0
    ) -> Callable[..., Any]: ...
    def cond(
        self, pred: Any, true_fn: Callable[..., Any], false_fn: Callable[..., Any], *operands: Any
    ) -> Any: ...
    def while_loop(
        self, cond_fn: Callable[[Any], Any], body_fn: Callable[[Any], Any], init: Any
    ) -> Any: ...
    def apply_if(self, pred: Any, fn: Callable[[Any], Any], state: Any) -> Any:
        """``fn(state)`` where ``pred`` holds, else ``state`` (``fn`` keeps the state's
        structure and types): :meth:`cond` with one branch the identity, for an update
        that is rare (adaptation's end of a window) or only for a while (warmup), which a
        compiler may do more cheaply than a two-branch conditional."""
        ...
    def fori_loop(
        self, lower: int, upper: int, body_fn: Callable[[Any, Any], Any], init: Any
    ) -> Any: ...
    def scan(
        self,
        fn: Callable[[Any, Any], tuple[Any, Any]],
        init: Any,
        xs: Any = None,
        length: int | None = None,
    ) -> tuple[Any, Any]: ...
    def callback(self, fn: Callable[..., None], *args: Any) -> None: ...

    # -- running chains: devices, compiled-code cache, waiting ---------------------------
    def shard_over_devices(
        self,
        fn: Callable[..., Any],
        num_devices: int,
        in_axes: Sequence[int | None],
        donate_argnums: Sequence[int] = (),
        optimize: bool = True,
    ) -> Callable[..., Any]:
        """``fn`` compiled to run once per device on that device's equal block of the leading
        axis of each argument with ``in_axes`` 0 (``None``: the argument is replicated); the
        outputs' leading blocks are joined back and stay on their devices. The devices do
        not communicate. ``optimize=False`` as for :meth:`jit`."""
        ...

    def distribute(self, tree: PyTree, num_devices: int) -> PyTree:
        """Place every leaf's leading axis in equal blocks on the first ``num_devices``
        devices, as :meth:`shard_over_devices` lays out its arguments (leaves already laid
        out so, such as its outputs, stay where they are)."""
        ...

    def enable_compilation_cache(self, path: str | None) -> None:
        """Keep compiled programs in ``path`` across processes (``None`` turns it off)."""
        ...

    def can_store_programs(self) -> bool:
        """Whether :meth:`stored_program` keeps compiled programs on disk on this backend (JAX
        with one device); where it does not, it returns the program unchanged."""
        ...

    def stored_program(
        self,
        name: str,
        jitted: Callable[..., Any],
        folder: Path,
        describe: Callable[[tuple[Any, ...]], Any],
        on_load: Callable[[], None],
    ) -> Callable[..., Any]:
        """``jitted`` (from :meth:`jit`), its compiled form kept in ``folder`` so that a fresh
        process loads it instead of tracing it again. ``describe(args)`` states what decides
        the program besides the arguments' shapes and minippl's code; it raises
        :class:`backends.program_keys.UnkeyableError` when something cannot be keyed, and the
        program is then compiled as usual. ``on_load`` is called when one comes from disk."""
        ...

    def expect_programs(self, folder: Path, hint: str) -> Callable[[], None]:
        """Start loading, in the background, the stored programs that the last run under
        ``hint`` (a cheap guess at "the same run again") used from ``folder``; call the
        function returned once the run has succeeded, to note the ones it used. A loaded
        program is used only when :meth:`stored_program` computes its key."""
        ...

    def program_ready(self, program: Callable[..., Any], *args: Any) -> bool:
        """Whether calling ``program`` (from :meth:`jit` or :meth:`stored_program`) with
        ``args`` would compile nothing: always where nothing is compiled (NumPy); on JAX, a
        stored program already loaded or on disk. ``False`` where the backend cannot tell."""
        ...

    def compile_ahead(
        self, program: Callable[..., Any], args: Callable[[], tuple[Any, ...]]
    ) -> Callable[[], None]:
        """Start compiling ``program`` on a background thread for the arguments ``args()``
        returns (arrays, or the shapes :meth:`eval_shape` gives), so that the caller's other
        work overlaps the compile; returns what waits for it to end. A later call of
        ``program`` with such arguments finds it compiled. Where nothing is compiled
        (NumPy), ``args`` is not called. A failure is not raised here: the later call
        meets it again."""
        ...

    def function_digest(self, fn: Callable[..., Any], *args: Any) -> str:
        """A digest of what ``fn`` computes at the shapes of ``args`` (JAX: of its jaxpr): it
        stands for a model's code in the key of a stored program."""
        ...

    def row_shapes(self, tree: PyTree) -> PyTree:
        """The shapes and dtypes of one row of each leaf (the leading axis dropped)."""
        ...

    def eval_shape(self, fn: Callable[..., Any], *args: Any) -> PyTree:
        """The shapes and dtypes of ``fn(*args)`` (objects with ``.shape`` and ``.dtype``),
        without computing it where the backend can avoid that."""
        ...

    def block_until_ready(self, tree: PyTree) -> PyTree:
        """Wait until every array of ``tree`` is computed (JAX dispatches asynchronously)."""
        ...

    # -- pytrees ------------------------------------------------------------------------
    def tree_map(self, fn: Callable[..., Any], tree: PyTree, *rest: PyTree) -> PyTree: ...
    def tree_flatten(self, tree: PyTree) -> tuple[list[Any], Any]: ...
    def tree_unflatten(self, treedef: Any, leaves: Sequence[Any]) -> PyTree: ...
    def ravel_pytree(self, tree: PyTree) -> tuple[Array, Callable[[Array], PyTree]]: ...

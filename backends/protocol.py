"""The one seam between minippl's core and an array library.

Everything in ``minippl/`` that touches numbers goes through an object satisfying
:class:`Backend`: an array namespace (``xp``, NumPy's API), special functions, splittable
PRNG keys and the draws made from them, gradients, and the program transformations that
let one source run compiled on JAX and eagerly on NumPy (``jit``, ``vmap``, ``cond``,
``while_loop``, ``fori_loop``, ``scan``).

How programs are compiled, and what makes them start sooner (keeping them across processes,
loading them ahead, compiling on another thread, shaping a loop for one compiler), sits
behind a second, smaller interface, :class:`Compiler`, which a backend hands out with
:meth:`Backend.compiler`. Its plain version (``backends/plain_compiler.py``) is
:meth:`Backend.jit` and nothing else: a learner can read the sampler with it in mind.

A third backend implements this protocol and registers itself under the
``minippl.backends`` entry-point group; the core never names a backend. The protocols are
structural (mypy checks each backend against them), so every implementation writes their
signatures out again: a search for repeated lines pairs them, by design.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, NamedTuple, Protocol, runtime_checkable

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
    # Optional, read with getattr: ``fused``, a mapping from a formula's name to a function
    # computing the same values in one step or with a cheaper derivative
    # (``minippl._fast.fusable`` says which formulas); a backend without it runs the
    # formulas as written.

    # -- dtypes and arrays -------------------------------------------------------------
    def float_dtype(self) -> Any: ...
    def is_tracer(self, x: object) -> bool: ...
    def is_concrete(self, x: object) -> bool: ...
    def to_numpy(self, x: Array) -> Any: ...
    def index_update(self, x: Array, index: Any, value: Array) -> Array: ...
    def stop_gradient(self, x: Array) -> Array: ...
    def eager(self) -> AbstractContextManager[None]:
        """Inside, operations on concrete arrays run at once and give concrete results, even
        while a program is being traced: how a check on a constant parameter can decide
        inside ``jit`` (JAX's ``ensure_compile_time_eval``; NumPy always runs at once)."""
        ...

    def enable_x64(self, use_x64: bool = True) -> None: ...
    def set_host_device_count(self, n: int) -> None: ...
    def device_count(self) -> int: ...

    def concurrent_programs(self) -> int:
        """How many one-chain programs gain from running at once on one device, as the jobs
        of :meth:`run_side_by_side`: the usable cores of a CPU, 1 where calls queue on the
        device (GPU, TPU) or the backend cannot run them at once."""
        ...

    def run_side_by_side(
        self,
        jobs: Sequence[Callable[[Callable[[Any], None]], Any]],
        workers: int,
        report: Callable[[Any], None],
    ) -> list[Any]:
        """``job(report_rows)`` for every job, at most ``workers`` at once, and the jobs'
        results in order. A job calls ``report_rows(rows)`` between its chunks of work, and
        ``report(rows)`` follows, never two at once (the progress bars are drawn there). The
        first error of a job is raised here with its type and message, after the other jobs
        are stopped (at their next report at the latest); so is Ctrl-C. How the jobs run is
        the backend's choice: host threads (JAX, whose calls let go of Python's lock), forked
        processes (NumPy, whose jobs come with the caller's memory and send back their
        results)."""
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
    def weibull_min(
        self, key: Key, scale: Array, concentration: Array, shape: Shape, dtype: Any = None
    ) -> Array: ...
    def gamma(self, key: Key, a: Array, shape: Shape, dtype: Any = None) -> Array: ...
    def dirichlet(self, key: Key, alpha: Array, shape: Shape, dtype: Any = None) -> Array: ...
    def bernoulli(self, key: Key, p: Array, shape: Shape) -> Array: ...
    def categorical(self, key: Key, logits: Array, shape: Shape) -> Array: ...
    def poisson(self, key: Key, lam: Array, shape: Shape) -> Array: ...
    def binomial(self, key: Key, n: Array, p: Array, shape: Shape) -> Array: ...
    def randint(self, key: Key, shape: Shape, minval: int, maxval: int) -> Array: ...

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

    # -- running chains: devices, programs, waiting --------------------------------------
    def compiler(self) -> Compiler:
        """How this backend makes programs (one object per backend)."""
        ...

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

    def eval_shape(self, fn: Callable[..., Any], *args: Any) -> PyTree:
        """The shapes and dtypes of ``fn(*args)`` (objects with ``.shape`` and ``.dtype``),
        without computing it where the backend can avoid that."""
        ...

    def block_until_ready(self, tree: PyTree) -> PyTree:
        """Wait until every array of ``tree`` is computed (JAX dispatches asynchronously)."""
        ...

    # -- pytrees ------------------------------------------------------------------------
    def tree_map(self, fn: Callable[..., Any], tree: PyTree, *rest: PyTree) -> PyTree: ...
    def select(self, pred: Any, on_true: PyTree, on_false: PyTree) -> PyTree:
        """``on_true`` where ``pred`` holds, else ``on_false``, leaf by leaf, for two trees
        already computed, of the same structure, shapes and dtypes (as a conditional's two
        branches must be). A compiled backend selects every leaf; an eager one may hand
        back one tree whole when ``pred`` is a single boolean."""
        ...

    def tree_flatten(self, tree: PyTree) -> tuple[list[Any], Any]: ...
    def tree_unflatten(self, treedef: Any, leaves: Sequence[Any]) -> PyTree: ...
    def ravel_pytree(self, tree: PyTree) -> tuple[Array, Callable[[Array], PyTree]]: ...
    def register_pytree_class(
        self,
        cls: type,
        flatten: Callable[[Any], tuple[Sequence[Any], Any]],
        unflatten: Callable[[Any, Sequence[Any]], Any],
    ) -> None:
        """Make instances of ``cls`` pytree nodes (``jax.tree_util.register_pytree_node``'s
        contract): ``flatten(obj)`` gives ``(children, aux)``, ``unflatten(aux, children)``
        rebuilds the object. The core registers its distributions, constraints and
        transforms so that ``jit`` and ``vmap`` take them; registering twice changes nothing."""
        ...


class Computed(NamedTuple):
    """A part of a program's description: ``fn``, identified by what it computes at the
    shapes of ``args`` (arrays, or the shapes :meth:`Backend.eval_shape` gives), not by its
    identity as a Python object. The arguments at the positions in ``batched`` have a
    leading axis (chains): ``fn`` is described at the shapes of one row of them."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    batched: tuple[int, ...] = ()


Description = tuple[Any, ...]
"""What decides a program besides its arguments' shapes and minippl's code: settings (plain
values, containers, arrays, minippl's own functions and objects), each taken by value, and
:class:`Computed` parts."""


@runtime_checkable
class Compiler(Protocol):
    """How a backend turns functions into programs, and makes them start sooner.

    Everything here may be done by :meth:`Backend.jit` alone: the plain compiler compiles
    in the caller's thread, keeps nothing on disk and runs every loop as written. The draws
    never depend on which compiler runs them.
    """

    def keep_programs(self, folder: Path | None, store: bool) -> None:
        """Keep compiled programs in ``folder`` across processes (``None``: nowhere), and
        with ``store`` also whole programs that a fresh process finds without tracing them.
        Called by every run; repeating a call changes nothing."""
        ...

    def program(
        self,
        name: str,
        fn: Callable[..., Any],
        *,
        describe: Callable[[tuple[Any, ...]], Description] | None = None,
        donate_argnums: Sequence[int] = (),
        optimize: bool = True,
        on_load: Callable[[], None] | None = None,
    ) -> Callable[..., Any]:
        """``fn`` compiled (:meth:`Backend.jit` with ``donate_argnums`` and ``optimize``).

        With ``describe``, a compiler may keep the compiled program under ``name``, the
        shapes of its arguments and ``describe(args)``, and a fresh process may then load
        it instead of tracing ``fn`` (``on_load`` is called when it does). ``describe``
        raises when something cannot be described; the program is then compiled as usual.
        """
        ...

    def ready(self, program: Callable[..., Any], *args: Any) -> bool:
        """Whether nothing is gained by compiling ``program`` for ``args`` ahead: it is
        compiled, on disk, or the compiler does no work apart from the call."""
        ...

    def ahead(
        self, program: Callable[..., Any], args: Callable[[], tuple[Any, ...]]
    ) -> Callable[[], None]:
        """Start compiling ``program`` for ``args()`` (arrays or their shapes) while the
        caller goes on; returns what waits for it. A later call with such arguments finds it
        compiled. Errors are not raised here: the later call meets them again."""
        ...

    def expect(self, hint: str) -> Callable[[], None]:
        """Start loading the programs that the last run under ``hint`` (a cheap guess at
        "the same run again") used; call what is returned when this run has succeeded, to
        note the ones it used. Nothing loaded is used unless its own key names it."""
        ...

    def chain_program(self, unbatched: bool) -> AbstractContextManager[None]:
        """While a chain program is traced inside this context: ``unbatched`` says that it
        runs one chain, without ``vmap`` (what :meth:`own_loop` may rely on)."""
        ...

    def own_loop(self, fn: Callable[[Any], Any], x: Any, n: Any) -> Any:
        """``fn(x)``, which the compiler may run as a loop of its own (``n``, a count
        ``>= 0`` known only when the program runs, gives it a trip count it cannot fold)."""
        ...

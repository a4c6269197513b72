"""The NumPy reference backend: eager, float64, no JAX needed.

It exists so that every line of the core can be stepped through in a debugger, and so that
the JAX backend has an independent implementation to be compared with.

Keys
    A key is a ``uint32`` array of shape ``(2,)``, like a raw JAX key. ``split`` hashes
    the key (SplitMix64's finaliser) into new keys, so streams are
    deterministic and splittable; a draw keys a Philox generator with it.
    The numbers differ from JAX's, by design: only the contract (same key, same draw) holds.

Gradients
    Exact, reverse mode, by autograd (``backends/numpy_autodiff.py`` says why autograd, and
    lists the few functions without a gradient and what happens there). ``xp`` is
    ``autograd.numpy`` and ``special`` ``autograd.scipy.special``, each completed there: the
    same NumPy and SciPy functions, which also record what they do to an array being
    differentiated. The hot operations record lean nodes (``backends/numpy_nodes.py``), and
    the formulas every potential runs are one node each (``fused``,
    ``backends/numpy_fused.py``): a gradient costs two to three evaluations' time whatever
    the dimension.

Program transformations
    ``jit`` is the identity, ``vmap`` a Python loop, ``cond``/``while_loop``/``fori_loop``/
    ``scan`` plain Python control flow: the sampler's source runs unchanged, one step at a time.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np

from backends import numpy_autodiff, numpy_fused, numpy_processes, pytree
from backends.plain_compiler import PlainCompiler
from backends.protocol import Array, Compiler, Key, PyTree, Shape

_SPLIT_TAG = 0x5EED5EED5EED5EED


_MASK64 = (1 << 64) - 1
_LOCAL = threading.local()


def _mix(x: int) -> int:
    """SplitMix64's finaliser: a fast bijective hash of a 64-bit integer."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


_KEY_DTYPE = np.dtype(np.uint32)
_SCALAR_TYPES = (bool, np.bool_, int, float, np.int64, np.float64)
"""Types of a predicate that is one value (``select`` then picks a whole tree)."""


def _as_int(key: Key) -> int:
    """The 64-bit integer a key holds, high word first.

    Keys are hashed and Philox is keyed with Python integers, not NumPy arrays: for two
    32-bit words one NumPy call costs more than a whole SplitMix64 round in Python.
    ``tolist`` reads both words in one call (indexing would build two NumPy scalars).
    """
    # The usual key (made by ``key`` or ``split``) passes the first test: an ndarray whose
    # dtype is the canonical uint32 object. Anything else gets the general check.
    k = key
    if type(k) is not np.ndarray or k.dtype is not _KEY_DTYPE or k.shape != (2,):
        k = np.asarray(key)
        if k.shape != (2,) or k.dtype != _KEY_DTYPE:
            raise ValueError(
                f"expected a single NumPy-backend key (uint32, shape (2,)), got {k.dtype} {k.shape}"
            )
    high, low = k.tolist()
    return int((high << 32) | low)


def _from_ints(values: list[int]) -> Any:
    """Keys, one row each, from 64-bit integers (high word first).

    A plain loop: a comprehension is a function call of its own, and ``split`` runs this for
    every sample site of an eager model.
    """
    words: list[int] = []
    for v in values:
        words += (v >> 32, v & 0xFFFFFFFF)
    return np.array(words, dtype=_KEY_DTYPE).reshape(len(values), 2)


def _generator(key: Key) -> np.random.Generator:
    """This thread's Philox generator, at the start of ``key``'s stream.

    Philox's 128-bit key is the 64-bit key and its SplitMix64 hash.

    Speed (this runs for every draw of an eager model): one generator per thread is re-keyed
    each time. Constructing a Philox costs about ten microseconds; assigning its ``state``
    costs about a third of one when the dict holds plain Python ints (NumPy arrays there cost
    twice as much), and the dict is built once per thread: only its two key words change.
    Counter zero and an empty buffer (``buffer_pos`` 4) put the generator at the start of the
    stream.
    """
    cache = getattr(_LOCAL, "philox", None)
    if cache is None:
        key_words = [0, 0]
        state = {
            "bit_generator": "Philox",
            "state": {"counter": [0, 0, 0, 0], "key": key_words},
            "buffer": [0, 0, 0, 0],
            "buffer_pos": 4,
            "has_uint32": 0,
            "uinteger": 0,
        }
        bit_generator = np.random.Philox(key=0)
        gen = np.random.Generator(bit_generator)
        cache = _LOCAL.philox = (gen, bit_generator, state, key_words)
    gen, bit_generator, state, key_words = cache
    k = _as_int(key)
    key_words[0], key_words[1] = k, _mix(k)
    bit_generator.state = state
    return gen


def _broadcast(param: Array, shape: Shape) -> Any:
    return np.broadcast_to(np.asarray(param, dtype=np.float64), shape)


class NumpyBackend:
    """:class:`backends.protocol.Backend` on NumPy and SciPy."""

    name = "numpy"
    xp: Any = numpy_autodiff.xp
    special: Any = numpy_autodiff.special
    fused: dict[str, Any] = numpy_fused.FUSED
    """Formulas of the core computed as one autograd node each (``backends/numpy_fused.py``)."""

    def __init__(self) -> None:
        self._compiler = PlainCompiler(self)

    # -- dtypes and arrays -------------------------------------------------------------
    def float_dtype(self) -> Any:
        return np.float64

    def is_tracer(self, x: object) -> bool:
        return False

    def is_concrete(self, x: object) -> bool:
        return True

    def to_numpy(self, x: Array) -> Any:
        return np.asarray(numpy_autodiff.getval(x))

    def index_update(self, x: Array, index: Any, value: Array) -> Array:
        return numpy_autodiff.index_update(x, index, value)

    def stop_gradient(self, x: Array) -> Array:
        return numpy_autodiff.getval(x)

    def eager(self) -> AbstractContextManager[None]:
        return nullcontext()

    def enable_x64(self, use_x64: bool = True) -> None:
        """NumPy computes in float64 always; nothing to switch."""

    def set_host_device_count(self, n: int) -> None:
        """NumPy has one device, the host; nothing to split."""

    def device_count(self) -> int:
        return 1

    def concurrent_programs(self) -> int:
        """The usable cores, each running chains in a forked process of its own (eager NumPy
        holds Python's lock for most of a step: threads would take turns); 1 where the system
        cannot fork."""
        return numpy_processes.usable_cores() if numpy_processes.can_fork() else 1

    def run_side_by_side(
        self,
        jobs: Sequence[Callable[[Callable[[Any], None]], Any]],
        workers: int,
        report: Callable[[Any], None],
    ) -> list[Any]:
        return numpy_processes.run_in_processes(jobs, workers, report)

    # -- linear algebra -----------------------------------------------------------------
    def cholesky(self, a: Array) -> Array:
        return numpy_autodiff.cholesky(a)

    def solve_triangular(self, a: Array, b: Array, lower: bool) -> Array:
        return numpy_autodiff.solve_triangular(a, b, lower=lower)

    # -- keys ---------------------------------------------------------------------------
    def key(self, seed: int) -> Key:
        seed = int(seed)
        return np.array([(seed >> 32) & 0xFFFFFFFF, seed & 0xFFFFFFFF], dtype=_KEY_DTYPE)

    def is_key(self, x: object) -> bool:
        return isinstance(x, np.ndarray) and x.dtype == np.uint32 and x.shape[-1:] == (2,)

    def split(self, key: Key, num: int = 2) -> Key:
        base = _mix(_as_int(key) ^ _SPLIT_TAG)
        if num == 2:
            # The split of every seeded site: what ``_from_ints`` makes, written word by word
            # into an empty array, which costs half of converting a list.
            first, second = _mix(base), _mix(base + 1)
            keys = np.empty((2, 2), dtype=_KEY_DTYPE)
            keys[0, 0], keys[0, 1] = first >> 32, first & 0xFFFFFFFF
            keys[1, 0], keys[1, 1] = second >> 32, second & 0xFFFFFFFF
            return keys
        return _from_ints([_mix(base + i) for i in range(num)])

    # -- draws --------------------------------------------------------------------------
    def _cast(self, x: Any, dtype: Any) -> Array:
        return np.asarray(x, dtype=np.float64 if dtype is None else dtype)

    def _standard(self, draw: Callable[..., Any], shape: Shape, dtype: Any) -> Array:
        """``draw(size)`` of a standard distribution, cast to ``dtype``.

        One number (every scalar site) is drawn without ``size`` and returned as a NumPy
        scalar, not a 0-d array: the same number from the same stream, and the arithmetic a
        distribution does next (``loc + eps * scale``) is several times cheaper on scalars
        (NumPy's own ops on 0-d arrays return such scalars anyway). Generator draws are
        float64 already, so without a ``dtype`` there is nothing to cast.
        """
        if dtype is None:
            return draw(shape) if shape else np.float64(draw())
        return self._cast(draw(shape or None), dtype)

    def normal(self, key: Key, shape: Shape, dtype: Any = None) -> Array:
        return self._standard(_generator(key).standard_normal, shape, dtype)

    def uniform(
        self, key: Key, shape: Shape, dtype: Any = None, minval: Any = 0.0, maxval: Any = 1.0
    ) -> Array:
        u = _generator(key).random(shape)
        return self._cast(minval + (np.asarray(maxval) - minval) * u, dtype)

    def exponential(self, key: Key, shape: Shape, dtype: Any = None) -> Array:
        return self._standard(_generator(key).standard_exponential, shape, dtype)

    def cauchy(self, key: Key, shape: Shape, dtype: Any = None) -> Array:
        return self._standard(_generator(key).standard_cauchy, shape, dtype)

    def laplace(self, key: Key, shape: Shape, dtype: Any = None) -> Array:
        return self._cast(_generator(key).laplace(size=shape), dtype)

    def logistic(self, key: Key, shape: Shape, dtype: Any = None) -> Array:
        return self._cast(_generator(key).logistic(size=shape), dtype)

    def gumbel(self, key: Key, shape: Shape, dtype: Any = None) -> Array:
        return self._cast(_generator(key).gumbel(size=shape), dtype)

    def weibull_min(
        self, key: Key, scale: Array, concentration: Array, shape: Shape, dtype: Any = None
    ) -> Array:
        draws = _generator(key).weibull(_broadcast(concentration, shape))
        return self._cast(_broadcast(scale, shape) * draws, dtype)

    def gamma(self, key: Key, a: Array, shape: Shape, dtype: Any = None) -> Array:
        return self._cast(_generator(key).standard_gamma(_broadcast(a, shape)), dtype)

    def dirichlet(self, key: Key, alpha: Array, shape: Shape, dtype: Any = None) -> Array:
        alpha = np.asarray(alpha, dtype=np.float64)
        full = tuple(shape) + alpha.shape[-1:]
        g = _generator(key).standard_gamma(np.broadcast_to(alpha, full))
        return self._cast(g / g.sum(-1, keepdims=True), dtype)

    def bernoulli(self, key: Key, p: Array, shape: Shape) -> Array:
        return np.asarray(_generator(key).random(shape) < np.asarray(p))

    def categorical(self, key: Key, logits: Array, shape: Shape) -> Array:
        logits = np.asarray(logits, dtype=np.float64)
        full = tuple(shape) + logits.shape[-1:]
        noise = _generator(key).gumbel(size=full)
        return np.argmax(np.broadcast_to(logits, full) + noise, axis=-1)

    def poisson(self, key: Key, lam: Array, shape: Shape) -> Array:
        return np.asarray(_generator(key).poisson(_broadcast(lam, shape)))

    def binomial(self, key: Key, n: Array, p: Array, shape: Shape) -> Array:
        n_b = np.broadcast_to(np.asarray(n), shape).astype(np.int64)
        # NumPy's Generator returns a Python int for a scalar draw; the protocol wants an array.
        return np.asarray(_generator(key).binomial(n_b, _broadcast(p, shape)))

    def randint(self, key: Key, shape: Shape, minval: int, maxval: int) -> Array:
        return _generator(key).integers(minval, maxval, size=shape)

    # -- derivatives and program transformations --------------------------------------
    def value_and_grad(
        self, fn: Callable[..., Any], argnums: int = 0, has_aux: bool = False
    ) -> Callable[..., Any]:
        return numpy_autodiff.value_and_grad(fn, argnums, has_aux)

    def grad(self, fn: Callable[..., Any], argnums: int = 0) -> Callable[..., Any]:
        vg = self.value_and_grad(fn, argnums)
        return lambda *args, **kwargs: vg(*args, **kwargs)[1]

    def jit(
        self,
        fn: Callable[..., Any],
        static_argnums: Sequence[int] = (),
        donate_argnums: Sequence[int] = (),
        optimize: bool = True,
    ) -> Callable[..., Any]:
        """``fn`` itself, run as a compiled program computes: with IEEE infinities and NaNs
        and no floating-point warnings. A sampler meets overflow on purpose (a divergent
        trajectory) and reports it as a divergence; NumPy's warnings would repeat it."""

        @functools.wraps(fn)
        def program(*args: Any, **kwargs: Any) -> Any:
            with np.errstate(all="ignore"):
                return fn(*args, **kwargs)

        return program

    def vmap(
        self, fn: Callable[..., Any], in_axes: Any = 0, out_axes: Any = 0
    ) -> Callable[..., Any]:
        def wrapped(*args: Any) -> Any:
            axes = in_axes if isinstance(in_axes, (tuple, list)) else [in_axes] * len(args)
            sizes = {
                np.shape(leaf)[ax]
                for arg, ax in zip(args, axes, strict=True)
                if ax is not None
                for leaf in pytree.tree_flatten(arg)[0]
            }
            if len(sizes) != 1:
                raise ValueError(f"vmap: mapped axes have inconsistent sizes {sorted(sizes)}")
            (n,) = sizes
            outs = []
            for i in range(n):
                call_args = [
                    arg
                    if ax is None
                    else pytree.tree_map(lambda x, a=ax, j=i: self.xp.take(x, j, axis=a), arg)
                    for arg, ax in zip(args, axes, strict=True)
                ]
                outs.append(fn(*call_args))
            return pytree.tree_map(lambda *xs: self.xp.stack(xs, axis=out_axes), *outs)

        return wrapped

    def cond(
        self, pred: Any, true_fn: Callable[..., Any], false_fn: Callable[..., Any], *operands: Any
    ) -> Any:
        return true_fn(*operands) if bool(pred) else false_fn(*operands)

    def while_loop(
        self, cond_fn: Callable[[Any], Any], body_fn: Callable[[Any], Any], init: Any
    ) -> Any:
        state = init
        while bool(cond_fn(state)):
            state = body_fn(state)
        return state

    def apply_if(self, pred: Any, fn: Callable[[Any], Any], state: Any) -> Any:
        return fn(state) if bool(pred) else state

    def fori_loop(
        self, lower: int, upper: int, body_fn: Callable[[Any, Any], Any], init: Any
    ) -> Any:
        state = init
        for i in range(int(lower), int(upper)):
            state = body_fn(i, state)
        return state

    def scan(
        self,
        fn: Callable[[Any, Any], tuple[Any, Any]],
        init: Any,
        xs: Any = None,
        length: int | None = None,
    ) -> tuple[Any, Any]:
        if xs is None:
            n = int(length) if length is not None else 0
            items: list[Any] = [None] * n
        else:
            leaves, treedef = pytree.tree_flatten(xs)
            n = len(leaves[0]) if leaves else int(length or 0)
            items = [pytree.tree_unflatten(treedef, [leaf[i] for leaf in leaves]) for i in range(n)]
        carry = init
        ys = []
        for x in items:
            carry, y = fn(carry, x)
            ys.append(y)
        if not ys:
            return carry, None
        # ``xp.stack``: a step's output traced for a gradient stays traced, stacked.
        return carry, pytree.tree_map(lambda *v: self.xp.stack(v), *ys)

    # -- running chains: devices, programs, waiting --------------------------------------
    def compiler(self) -> Compiler:
        """The plain compiler: ``jit`` is the identity here, so a program is the function."""
        return self._compiler

    def shard_over_devices(
        self,
        fn: Callable[..., Any],
        num_devices: int,
        in_axes: Sequence[int | None],
        donate_argnums: Sequence[int] = (),
        optimize: bool = True,
    ) -> Callable[..., Any]:
        """One device (the host): ``fn`` on the whole leading axis."""
        return fn

    def distribute(self, tree: PyTree, num_devices: int) -> PyTree:
        """One device (the host): nothing to move."""
        return tree

    def eval_shape(self, fn: Callable[..., Any], *args: Any) -> PyTree:
        """Eager: compute it (its arrays carry their shapes and dtypes)."""
        return pytree.tree_map(np.asarray, fn(*args))

    def block_until_ready(self, tree: PyTree) -> PyTree:
        return tree

    # -- pytrees ------------------------------------------------------------------------
    def tree_map(self, fn: Callable[..., Any], tree: PyTree, *rest: PyTree) -> PyTree:
        return pytree.tree_map(fn, tree, *rest)

    def select(self, pred: Any, on_true: PyTree, on_false: PyTree) -> PyTree:
        """One tree whole when ``pred`` is a single boolean, ``where`` leaf by leaf otherwise.

        The tree of one NUTS chain selects between whole states several times per leaf; a
        ``where`` per leaf made that a fifth of a leapfrog step's time on small models.
        """
        if type(pred) in _SCALAR_TYPES or (type(pred) is np.ndarray and pred.ndim == 0):
            return on_true if pred else on_false
        return pytree.tree_map(lambda x, y: self.xp.where(pred, x, y), on_true, on_false)

    def tree_flatten(self, tree: PyTree) -> tuple[list[Any], Any]:
        return pytree.tree_flatten(tree)

    def tree_unflatten(self, treedef: Any, leaves: Sequence[Any]) -> PyTree:
        return pytree.tree_unflatten(treedef, leaves)

    def ravel_pytree(self, tree: PyTree) -> tuple[Array, Callable[[Array], PyTree]]:
        return numpy_autodiff.ravel_values(tree)

    def register_pytree_class(
        self,
        cls: type,
        flatten: Callable[[Any], tuple[Sequence[Any], Any]],
        unflatten: Callable[[Any, Sequence[Any]], Any],
    ) -> None:
        pytree.register_class(cls, flatten, unflatten)

"""The primitives a model calls: each builds a :class:`Message` and sends it up the stack.

Tutorial: "Specifying the model" (``tutorial/s02_model.py``); plates and subsampling in
"Scaling and masking" (``tutorial/s07_scale_mask.py``).

With no handler active, a primitive does the obvious thing (``sample`` draws with the key it
was given or returns ``obs``; ``param`` returns its initial value), so a model is also a
plain Python function.
"""

from __future__ import annotations

import warnings
from typing import Any

from minippl.backend import current
from minippl.checks import check_count, check_plate, check_sample
from minippl.distributions.distribution import Distribution, Unit
from minippl.distributions.util import broadcast_shapes, shape_of
from minippl.messages import CondIndepStackFrame, Message
from minippl.runtime import Messenger, MissingKeyError, apply_stack, stack

Shape = tuple[int, ...]


def sample(
    name: str,
    fn: Distribution,
    obs: Any = None,
    rng_key: Any = None,
    sample_shape: Shape = (),
    infer: dict[str, Any] | None = None,
    obs_mask: Any = None,
) -> Any:
    """A random variable ``name`` drawn from ``fn``, or observed as ``obs``.

    ``sample_shape`` adds leading dims to the draw; ``infer`` carries metadata for inference.
    ``obs_mask`` (boolean, over the batch dims) splits a partly observed site in two, as in
    NumPyro: ``{name}_observed`` and ``{name}_unobserved``, joined into a deterministic site.

    >>> minippl.sample("y", dist.Normal(0.0, 1.0), obs=0.5)  # no handler: the data itself
    0.5
    >>> handlers.seed(minippl.sample, 0)("x", dist.Normal(0.0, 1.0), sample_shape=(2,)).shape
    (2,)
    """
    check_sample(name, fn, sample_shape)
    if not stack():  # no handler: draw with the key given, or return the data
        if obs is None and rng_key is None:
            raise MissingKeyError(name)
        return obs if obs is not None else fn(rng_key=rng_key, sample_shape=sample_shape)
    if obs_mask is not None:
        return _masked_observe(name, fn, obs, obs_mask, rng_key, infer)
    kwargs = {"rng_key": rng_key, "sample_shape": tuple(sample_shape)}
    msg = Message("sample", name, fn, kwargs=kwargs, value=obs, is_observed=obs is not None)
    msg.infer = {} if infer is None else infer
    return apply_stack(msg).value


def _masked_observe(
    name: str, fn: Distribution, obs: Any, obs_mask: Any, rng_key: Any, infer: Any
) -> Any:
    """``sample(..., obs_mask=...)``: the observed and the missing part as two sites."""
    from minippl.handlers.weights import mask  # the handlers import this module

    xp = current().xp
    with mask(mask=obs_mask):
        observed = sample(f"{name}_observed", fn, obs=obs, rng_key=rng_key, infer=infer)
    with mask(mask=obs_mask ^ True):
        unobserved = sample(f"{name}_unobserved", fn, rng_key=rng_key, infer=infer)
    batch_mask = xp.reshape(obs_mask, shape_of(obs_mask) + (1,) * fn.event_dim)
    return deterministic(name, xp.where(batch_mask, observed, unobserved))


def param(name: str, init_value: Any = None, **kwargs: Any) -> Any:
    """A learnable parameter; ``constraint=`` and ``event_dim=`` are kept for inference.

    ``init_value`` may be a function of a PRNG key, called under ``seed``.

    >>> minippl.param("w", 0.5)  # no handler: the initial value
    0.5
    >>> handlers.substitute(lambda: minippl.param("w", 0.5), data={"w": 2.0})()
    2.0
    """
    if not isinstance(name, str):
        raise TypeError(f"param: the site's name must be a str, got {name!r}")
    if not stack():
        if callable(init_value):
            raise MissingKeyError(name, "param (with a callable init_value)")
        return init_value
    if callable(init_value):
        initialiser = init_value

        def fn(*_: Any, **__: Any) -> Any:
            return initialiser(prng_key())

        msg = Message(type="param", name=name, fn=fn, kwargs=kwargs)
    else:
        msg = Message(type="param", name=name, fn=_identity, args=(init_value,), kwargs=kwargs)
    return apply_stack(msg).value


def _identity(x: Any, *_: Any, **__: Any) -> Any:
    return x


def deterministic(name: str, value: Any) -> Any:
    """Record ``value`` in the trace under ``name`` (a function of other sites).

    >>> def model():
    ...     x = minippl.sample("x", dist.Normal(0.0, 1.0), obs=2.0)
    ...     return minippl.deterministic("twice", 2 * x)
    >>> handlers.trace(model).get_trace()["twice"]["value"]
    4.0
    """
    if not stack():
        return value
    return apply_stack(Message(type="deterministic", name=name, value=value)).value


def factor(name: str, log_factor: Any) -> None:
    """Add ``log_factor`` to the model's log density, as an observed ``Unit`` site.

    >>> site = handlers.trace(lambda: minippl.factor("penalty", -1.5)).get_trace()["penalty"]
    >>> site["type"], float(site["fn"].log_prob(site["value"]))
    ('sample', -1.5)
    """
    unit = Unit(log_factor)
    value = current().xp.zeros(shape_of(log_factor) + (0,))
    sample(name, unit, obs=value, infer={"is_auxiliary": True})


def prng_key() -> Any:
    """A fresh PRNG key from the enclosing ``seed`` (``None``, with a warning, outside one).

    >>> def model():
    ...     return dist.Normal(0.0, 1.0).sample(minippl.prng_key(), (2,))
    >>> handlers.seed(model, rng_seed=0)().shape
    (2,)
    """
    if not stack():
        warnings.warn("prng_key() called outside a seed handler; returning None", stacklevel=2)
        return None
    msg = Message(type="prng_key", name=None, fn=_key_of, kwargs={"rng_key": None})
    return apply_stack(msg).value


def _key_of(rng_key: Any = None) -> Any:
    return rng_key


def subsample(data: Any, event_dim: int) -> Any:
    """Slice ``data`` to the enclosing plates' subsample; ``event_dim`` rightmost dims are kept.

    >>> import numpy as np
    >>> def model(data):
    ...     with minippl.plate("data", 10, subsample_size=3):
    ...         return minippl.subsample(data, event_dim=1)
    >>> handlers.seed(model, rng_seed=0)(np.zeros((10, 2))).shape
    (3, 2)
    """
    event_dim = check_count(event_dim, "event_dim", "subsample", minimum=0)
    if not stack():
        return data
    msg = Message(type="subsample", name=None, value=data, kwargs={"event_dim": event_dim})
    return apply_stack(msg).value


def get_mask() -> Any:
    """The mask the enclosing ``mask`` handlers apply here (``None`` when there is none).

    >>> minippl.get_mask() is None, handlers.mask(minippl.get_mask, mask=False)()
    (True, False)
    """
    if not stack():
        return None
    msg = Message(type="inspect", name=None, fn=lambda: True)
    return apply_stack(msg).mask


class plate(Messenger):
    """Conditionally independent copies along one batch dim: ``with plate("data", N):``.

    Acts in process_message on sample, param, plate and deterministic messages (unless
    ``infer["block_plates"]`` names it): it appends its frame to ``cond_indep_stack``; for a
    sample it folds ``kwargs["sample_shape"]`` into the batch shape and writes ``fn`` expanded
    to the plates' shape; when subsampling it multiplies ``scale`` (not a deterministic's)
    by ``size / subsample_size``. In postprocess_message it reads ``kwargs["event_dim"]`` of
    ``param`` and ``subsample`` messages and slices their ``value`` to the subsample.

    ``dim`` defaults to the rightmost dim not used by enclosing plates, so outer plates get
    -1 and inner plates -2, -3, ... (as in NumPyro).

    >>> def model():
    ...     with minippl.plate("rows", 4), minippl.plate("columns", 3, dim=-2):
    ...         return minippl.sample("x", dist.Normal(0.0, 1.0))
    >>> handlers.seed(model, rng_seed=0)().shape
    (3, 4)
    """

    def __init__(
        self, name: str, size: int, subsample_size: int | None = None, dim: int | None = None
    ) -> None:
        size, subsample_size, dim = check_plate(name, size, subsample_size, dim)
        self.name = name
        self.size = size
        self.dim, self._indices, self.subsample_size = self._announce(
            name, size, subsample_size, dim
        )
        # The frame every site inside gets, and the batch shape of a site inside this plate
        # and no other (size at ``dim``, 1 to its right): built once here, not once per site.
        self._frame = CondIndepStackFrame(name, self.dim, self.subsample_size)
        self._shape_alone = (self.subsample_size,) + (1,) * (-self.dim - 1)
        super().__init__()

    @staticmethod
    def _announce(
        name: str, size: int, subsample_size: int | None, dim: int | None
    ) -> tuple[int, Any, int]:
        """Send the plate's own message: it gets its indices and learns the dims in use.

        Returns the plate's dim, its indices and how many there are.
        """
        xp = current().xp
        subsampling = subsample_size is not None and subsample_size != size
        msg = Message(
            type="plate",
            name=name,
            fn=_subsample_indices,
            args=(size, subsample_size),
            kwargs={"rng_key": None},
            value=None if subsampling else xp.arange(size),
            scale=1.0,
        )
        if stack():
            apply_stack(msg)
        elif subsampling:
            raise MissingKeyError(name, "subsampled plate")
        given = int(shape_of(msg.value)[0])
        if subsample_size is not None and subsample_size != given:
            warnings.warn(
                f"plate {name!r}: subsample_size={subsample_size} but a handler supplied "
                f"{given} indices; the plate uses {given}. Did the model and the guide (or "
                "the replayed trace) use different subsample sizes?",
                stacklevel=4,
            )
        occupied = {frame.dim for frame in msg.cond_indep_stack}
        if dim is None:
            dim = -1
            while dim in occupied:
                dim -= 1
        elif dim in occupied:
            raise ValueError(f"plate {name!r}: dim {dim} is already used by an enclosing plate")
        return dim, msg.value, given

    def __enter__(self) -> Any:
        super().__enter__()
        return self._indices

    def process_message(self, msg: Message) -> None:
        if msg.type not in ("param", "sample", "plate", "deterministic"):
            return
        if self.name in msg.infer.get("block_plates", ()):
            return
        msg.cond_indep_stack.append(self._frame)
        if msg.type == "deterministic":
            return
        if msg.type == "sample":
            msg.fn = msg.fn.expand(self._batch_shape(msg))
        if self.size != self.subsample_size:
            # NumPyro's order of operations, so the scale agrees to the last bit.
            msg.scale = (1.0 if msg.scale is None else msg.scale) * (
                self.size / self.subsample_size
            )

    def _batch_shape(self, msg: Message) -> Shape:
        """The distribution's batch shape broadcast against all enclosing plates."""
        frames = msg.cond_indep_stack
        if len(frames) == 1:  # this plate alone (its own frame), the usual case
            expected = self._shape_alone
        else:
            sizes = [1] * max(-f.dim for f in frames)
            for f in frames:
                sizes[f.dim] = f.size
            expected = tuple(sizes)
        dist_shape = tuple(msg.kwargs.get("sample_shape", ())) + tuple(msg.fn.batch_shape)
        msg.kwargs["sample_shape"] = ()
        if dist_shape == expected:  # a distribution written in the plates' shape
            return expected
        overlap = max(len(expected) - len(dist_shape), 0)
        try:
            trailing = broadcast_shapes(expected[overlap:], dist_shape)
        except ValueError:
            raise ValueError(
                f"site {msg.name!r}: batch shape {dist_shape} does not match the enclosing "
                f"plates {[(f.name, f.size, f.dim) for f in frames]} (expected shape "
                f"{tuple(expected)}). Make the distribution's batch dim at dim={self.dim} equal "
                f"{self.subsample_size} (or 1), or move the site out of plate {self.name!r}."
            ) from None
        return expected[:overlap] + trailing

    def postprocess_message(self, msg: Message) -> None:
        if msg.type not in ("subsample", "param"):
            return
        event_dim = msg.kwargs.get("event_dim")
        if event_dim is None:
            return
        dim = self.dim - event_dim
        shape = shape_of(msg.value)
        if len(shape) < -dim or shape[dim] == 1:
            return
        if shape[dim] != self.size:
            what = f"param {msg.name!r}" if msg.type == "param" else "subsample(...)"
            raise ValueError(
                f"inside plate {self.name!r} (size {self.size}, dim {self.dim}), {what} with "
                f"event_dim={event_dim} has shape {shape}: dim {dim} should be {self.size}"
            )
        if self.subsample_size < self.size:
            msg.value = current().xp.take(msg.value, self._indices, axis=dim)


def _subsample_indices(size: int, subsample_size: int, rng_key: Any = None) -> Any:
    """``subsample_size`` distinct indices in ``range(size)``, drawn without replacement."""
    if rng_key is None:
        raise ValueError(
            "subsampling a plate needs a PRNG key: wrap the model in seed(...). "
            "NUTS and HMC do not subsample; pass subsample_size only for SVI-style use."
        )
    # Compiled once per (size, subsample_size) on JAX, instead of re-tracing the loop on
    # every eager call; on NumPy ``jit`` is the identity.
    draw = current().jit(_fisher_yates, static_argnums=(1, 2))
    return draw(rng_key, size, subsample_size)


def _fisher_yates(rng_key: Any, size: int, subsample_size: int) -> Any:
    """A partial Fisher-Yates shuffle, one key per swap: NumPyro's draw on CPU, bit for bit.

    NumPyro switches to ``random.choice`` on GPU and TPU; minippl shuffles everywhere, so on
    an accelerator its subsample indices differ from NumPyro's (the scale does not).
    """
    backend = current()
    xp = backend.xp
    keys = backend.split(rng_key, subsample_size)

    def swap(values: Any, step: Any) -> tuple[Any, None]:
        last = size - step - 1
        other = backend.randint(keys[step], (), 0, last + 1)
        pair = xp.stack([xp.asarray(last), xp.asarray(other)])
        return backend.index_update(values, pair, values[pair[::-1]]), None

    shuffled, _ = backend.scan(swap, xp.arange(size), xp.arange(subsample_size))
    return shuffled[-subsample_size:]

"""The handler stack: apply_stack's three phases, stop, popping, the two usage modes, messages."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

import minippl as numpyro
import minippl.distributions as dist
from backends import Backend
from minippl import handlers
from minippl.messages import CondIndepStackFrame, Message
from minippl.runtime import Messenger, apply_stack, stack


class Recorder(Messenger):
    """Appends ``(phase, label, site name)`` to a shared log; optionally stops messages."""

    def __init__(self, label: str, log: list[tuple[str, str, Any]], stop: bool = False) -> None:
        self.label, self.log, self.stop = label, log, stop
        super().__init__()

    def process_message(self, msg: Message) -> None:
        self.log.append(("process", self.label, msg.name))
        if self.stop:
            msg.stop = True

    def postprocess_message(self, msg: Message) -> None:
        self.log.append(("postprocess", self.label, msg.name))


def one_site() -> Any:
    return numpyro.sample("x", dist.Normal(0.0, 1.0))


def test_three_phases_run_bottom_up_then_top_down(backend: Backend) -> None:
    log: list[tuple[str, str, Any]] = []
    with Recorder("outer", log), Recorder("middle", log), Recorder("inner", log):
        with handlers.seed(rng_seed=0):
            one_site()
    assert log == [
        ("process", "inner", "x"),
        ("process", "middle", "x"),
        ("process", "outer", "x"),
        ("postprocess", "outer", "x"),
        ("postprocess", "middle", "x"),
        ("postprocess", "inner", "x"),
    ]


def test_stop_hides_the_message_from_handlers_above(backend: Backend) -> None:
    log: list[tuple[str, str, Any]] = []
    with Recorder("outer", log), Recorder("stopper", log, stop=True), Recorder("inner", log):
        with handlers.seed(rng_seed=0):
            value = one_site()
    assert value is not None  # phase 2 still ran
    assert log == [
        ("process", "inner", "x"),
        ("process", "stopper", "x"),
        ("postprocess", "stopper", "x"),
        ("postprocess", "inner", "x"),
    ]


def test_default_execution_only_without_a_value(backend: Backend) -> None:
    # A value set in phase 1 skips the draw: no key is needed for an observed site.
    with handlers.trace() as tr:
        assert numpyro.sample("y", dist.Normal(0.0, 1.0), obs=2.0) == 2.0
    assert tr["y"].is_observed and tr["y"].intermediates == []


def test_apply_stack_directly_and_the_stack_view(backend: Backend) -> None:
    tracer = handlers.trace()
    with tracer as tr:
        assert stack() == (tracer,)
        apply_stack(Message(type="deterministic", name="d", value=3.0))
    assert stack() == ()
    assert tr["d"].value == 3.0


def test_context_manager_and_wrapper_are_equivalent(backend: Backend) -> None:
    with handlers.seed(rng_seed=0):
        a = one_site()
    b = handlers.seed(one_site, rng_seed=0)()
    c = handlers.seed(rng_seed=0)(one_site)()  # the decorator form
    assert float(a) == float(b) == float(c)


def test_decorator_form() -> None:
    @handlers.condition(data={"x": 1.5})
    def model() -> Any:
        return numpyro.sample("x", dist.Normal(0.0, 1.0))

    assert model.__name__ == "model"
    assert model() == 1.5


def test_wrapper_without_a_model_is_an_error() -> None:
    with pytest.raises(TypeError, match="wraps no function"):
        handlers.trace()(1, 2)


def test_popped_when_the_model_raises(backend: Backend) -> None:
    def bad() -> None:
        numpyro.sample("x", dist.Normal(0.0, 1.0))
        raise KeyError("boom")

    with pytest.raises(KeyError):
        handlers.trace(handlers.seed(bad, rng_seed=0)).get_trace()
    assert stack() == ()
    with pytest.raises(KeyError), handlers.trace(), handlers.condition(data={"x": 0.0}):
        bad()
    assert stack() == ()


def test_exit_pops_handlers_left_above_it(backend: Backend) -> None:
    # A handler entered by hand and never exited is removed with the one below it.
    outer, inner = handlers.trace(), handlers.trace()
    outer.__enter__()
    inner.__enter__()
    outer.__exit__(None, None, None)
    assert stack() == ()


def test_same_handler_entered_twice(backend: Backend) -> None:
    tracer = handlers.trace()
    with tracer, tracer:
        assert stack() == (tracer, tracer)
    assert stack() == ()


# -- the message -------------------------------------------------------------------------


def test_message_mapping_access_and_keys_by_type(backend: Backend) -> None:
    tr = handlers.trace(handlers.seed(_linear, rng_seed=0)).get_trace()
    slope = tr["slope"]
    assert slope["value"] is slope.value
    assert slope.get("is_observed", "N/A") is False
    assert list(slope.keys()) == [
        "type", "name", "fn", "args", "kwargs", "value", "scale", "is_observed",
        "intermediates", "cond_indep_stack", "infer",
    ]  # fmt: skip
    assert tr["mu"].get("is_observed", "N/A") == "N/A"
    assert "fn" not in tr["mu"] and "value" in tr["mu"]
    assert dict(tr["mu"].items()).keys() == {"type", "name", "value", "cond_indep_stack"}
    assert list(tr["data"]) == ["type", "name", "fn", "args", "kwargs", "value", "scale",
                                "cond_indep_stack"]  # fmt: skip
    with pytest.raises(KeyError, match="deterministic"):
        tr["mu"]["fn"]
    slope["scale"] = 2.0
    assert slope.scale == 2.0
    with pytest.raises(KeyError):
        slope["no_such_field"] = 1


def test_message_repr_is_readable(backend: Backend) -> None:
    tr = handlers.trace(handlers.seed(_linear, rng_seed=0)).get_trace()
    text = repr(tr["slope"])
    assert text.startswith("{'type': 'sample',\n 'name': 'slope',")
    assert "'is_observed': False" in text and "'infer': {}" in text
    assert "<array shape=(10,)" in repr(tr["obs"])  # big arrays are summarised


def test_message_copy_owns_its_containers() -> None:
    msg = Message(type="sample", name="x", kwargs={"rng_key": None}, infer={"a": 1})
    msg.cond_indep_stack.append(CondIndepStackFrame("p", -1, 3))
    other = msg.copy()
    other.kwargs["rng_key"] = 1
    other.infer["b"] = 2
    other.cond_indep_stack.append(CondIndepStackFrame("q", -2, 4))
    assert msg.kwargs == {"rng_key": None} and msg.infer == {"a": 1}
    assert len(msg.cond_indep_stack) == 1


def test_message_copy_keeps_every_field() -> None:
    # Every field set away from its default: a field the copy forgot would keep its default.
    values = {
        "type": "sample", "name": "x", "fn": dist.Normal(0.0, 1.0), "args": (1,),
        "kwargs": {"k": 1}, "value": 2.0, "scale": 3.0, "is_observed": True,
        "intermediates": [4], "cond_indep_stack": [CondIndepStackFrame("p", -1, 3)],
        "infer": {"a": 1}, "mask": False, "stop": True, "interveners": ("do",),
    }  # fmt: skip
    assert set(values) == {f.name for f in dataclasses.fields(Message)}
    msg = Message(**values)
    copied = msg.copy()
    assert copied == msg and copied is not msg
    assert all(getattr(copied, name) == value for name, value in values.items())


def test_trace_stores_copies(backend: Backend) -> None:
    class Meddler(Messenger):
        def postprocess_message(self, msg: Message) -> None:
            msg.infer["touched"] = True

    # trace (above) postprocesses first; the handler below then changes the message.
    with handlers.trace() as tr, Meddler(), handlers.seed(rng_seed=0):
        one_site()
    assert tr["x"].infer == {}


def _linear() -> None:
    x = np.linspace(-2.0, 2.0, 10)
    intercept = numpyro.sample("intercept", dist.Normal(0.0, 10.0))
    slope = numpyro.sample("slope", dist.Normal(0.0, 5.0))
    sigma = numpyro.sample("sigma", dist.HalfNormal(1.0))
    mu = numpyro.deterministic("mu", intercept + slope * x)
    with numpyro.plate("data", 10):
        numpyro.sample("obs", dist.Normal(mu, sigma))


def test_unnamed_messages_have_numpyros_keys(backend: Backend) -> None:
    seen: dict[str, Message] = {}

    class Keep(Messenger):
        def process_message(self, msg: Message) -> None:
            seen[msg.type] = msg

    with handlers.seed(rng_seed=0), Keep():
        numpyro.prng_key()
        numpyro.subsample(backend.xp.arange(3.0), event_dim=0)
        numpyro.get_mask()
    assert "name" not in seen["prng_key"] and seen["prng_key"].get("name") is None
    assert list(seen["subsample"]) == ["type", "value", "kwargs"]
    assert "mask" in seen["inspect"] and "name" not in seen["inspect"]

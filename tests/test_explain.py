"""``minippl.explain``: the story of each message, handler by handler and phase by phase."""

from __future__ import annotations

from typing import Any

import pytest

import minippl as numpyro
import minippl.distributions as dist
from backends import Backend
from minippl import handlers
from minippl.explain import Explanation, explaining, summarise
from minippl.runtime import _WATCHER


def linear_model(x: Any) -> None:
    intercept = numpyro.sample("intercept", dist.Normal(0.0, 10.0))
    slope = numpyro.sample("slope", dist.Normal(0.0, 5.0))
    sigma = numpyro.sample("sigma", dist.HalfNormal(1.0))
    mu = numpyro.deterministic("mu", intercept + slope * x)
    with numpyro.plate("data", x.shape[0]):
        numpyro.sample("obs", dist.Normal(mu, sigma))


def chain(x: float) -> Any:
    z = numpyro.sample("z", dist.Normal(x, 1.0))
    return numpyro.sample("y", dist.Normal(z, 0.5))


def test_condition_substitute_order_is_visible(backend: Backend) -> None:
    x = backend.xp.linspace(-2, 2, 5)
    seeded = handlers.seed(linear_model, rng_seed=0)
    with explaining() as outer_condition:
        handlers.condition(handlers.substitute(seeded, data={"slope": 10.0}), data={"slope": 3.0})(
            x
        )
    with explaining() as outer_substitute:
        handlers.substitute(handlers.condition(seeded, data={"slope": 3.0}), data={"slope": 10.0})(
            x
        )

    first, second = outer_condition["slope"], outer_substitute["slope"]
    assert first.stack == ("seed", "substitute(data: slope)", "condition(data: slope)")
    assert first.handlers("process") == first.stack
    assert first.handlers("postprocess") == tuple(reversed(first.stack))
    assert first.changed_by("seed") == ("kwargs.rng_key",)
    assert first.changed_by("substitute") == ("value",)
    assert first.changed_by("condition") == ("value", "is_observed")
    assert second.changed_by("condition") == ("value", "is_observed")
    assert second.changed_by("substitute") == ("value",)
    # condition(substitute(...)): 10.0 then 3.0; the other nesting: 3.0 then 10.0.
    values = [c.new for s in first.steps for c in s.changes if c.field == "value"]
    assert values == [10.0, 3.0]
    values = [c.new for s in second.steps for c in s.changes if c.field == "value"]
    assert values == [3.0, 10.0]
    # The value was set in phase 1, so phase 2 did not draw.
    default = next(step for step in first.steps if step.phase == "default")
    assert default.note.startswith("not run")
    # An untouched site was drawn in phase 2.
    drawn = next(s for s in outer_condition["intercept"].steps if s.phase == "default")
    assert drawn.fields == ("value", "intermediates") or drawn.fields[0] == "value"


def test_steps_follow_the_three_phases(backend: Backend) -> None:
    x = backend.xp.linspace(-2, 2, 5)
    with explaining() as record:
        handlers.trace(handlers.seed(linear_model, rng_seed=0))(x)
    assert [story.name for story in record.sites] == [
        "intercept",
        "slope",
        "sigma",
        "mu",
        "data",
        "obs",
    ]
    obs = record["obs"]
    assert obs.stack == ("plate('data')", "seed", "trace")
    assert [step.phase for step in obs.steps] == ["process"] * 3 + ["default"] + ["postprocess"] * 3
    assert obs.changed_by("plate") == ("cond_indep_stack",)
    assert obs.changed_by("trace") == ()
    assert "value" in next(s for s in obs.steps if s.phase == "default").fields


def test_do_shows_the_fork_and_the_hidden_original(backend: Backend) -> None:
    with explaining() as record:
        handlers.trace(handlers.seed(handlers.do(chain, data={"z": 5.0}), rng_seed=0))(1.0)
    names = [story.name for story in record]
    assert names.count("z") == 1 and "z__CF" in names
    original = record["z__CF"]
    assert original.sent_as == "z"
    fields = original.changed_by("do")
    assert {"name", "value", "is_observed", "stop"} <= set(fields)
    # Stopped at do: no handler above it processed the original.
    assert original.handlers("process") == ("do(data: z)",)
    assert "sent as 'z'" in str(original)


def test_block_stops_and_asks_for_a_key(backend: Backend) -> None:
    with explaining() as record:
        handlers.trace(handlers.seed(handlers.block(chain, hide=["z"]), rng_seed=0))(1.0)
    z = record["z"]
    assert z.handlers("process") == ("block",)
    assert set(z.changed_by("block")) == {"kwargs.rng_key", "stop"}
    keys = [story for story in record if story.type == "prng_key"]
    assert len(keys) == 1 and keys[0].changed_by("seed") == ("kwargs.rng_key",)
    assert "(prng_key)" in str(record)


def test_explain_prints_and_returns(backend: Backend, capsys: pytest.CaptureFixture[str]) -> None:
    record = numpyro.explain(handlers.seed(chain, rng_seed=0), 1.0)
    printed = capsys.readouterr().out
    assert isinstance(record, Explanation)
    assert printed.strip() == str(record).strip()
    assert "1 process" in printed and "2 default" in printed and "3 postprocess" in printed
    assert "stack, bottom to top: seed" in printed
    assert record.result is not None
    assert len(record) == 2


def test_explaining_is_quiet_and_restores_the_watcher(
    backend: Backend, capsys: pytest.CaptureFixture[str]
) -> None:
    with explaining():
        handlers.seed(chain, rng_seed=0)(1.0)
    assert capsys.readouterr().out == ""
    assert _WATCHER.get() is None
    with pytest.raises(ZeroDivisionError), explaining():
        1 / 0  # noqa: B018
    assert _WATCHER.get() is None


def test_a_model_under_no_handler_still_tells_its_story(backend: Backend) -> None:
    key = backend.key(0)
    with explaining() as record:
        numpyro.sample("x", dist.Normal(0.0, 1.0), rng_key=key)
    story = record["x"]
    assert story.stack == ()
    assert [step.phase for step in story.steps] == ["default"]
    assert "value" in story.steps[0].fields
    assert "stack, bottom to top: (none)" in str(story)


def test_unknown_site_names_the_known_ones(backend: Backend) -> None:
    with explaining() as record:
        handlers.seed(chain, rng_seed=0)(1.0)
    with pytest.raises(KeyError, match="'z', 'y'"):
        record["w"]


def test_summaries_are_short(backend: Backend) -> None:
    xp = backend.xp
    assert summarise(xp.zeros((50,))).startswith("array(shape=(50,)")
    assert summarise(backend.key(0)) == "<PRNG key>"
    assert summarise(3.0) == "3.0"
    assert summarise(None) == "None"
    assert summarise(dist.Normal(0.0, 1.0).expand((3,))) == "Expanded(Normal)[batch (3,)]"
    assert summarise(xp.asarray([1.0, 2.0])) == "[1.0, 2.0]"

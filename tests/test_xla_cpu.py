"""The XLA setting that compiles small loops whole, and what keeps NUTS eligible for it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from backends import Backend
from backends.jax import xla_flags as xla_cpu
from backends.jax.xla_flags import (
    SMALL_LOOP_BYTES,
    apply_small_loop_flags,
    flags_before,
    small_loop_flags,
)
from minippl.infer.hmc import NUTS

SETTING = f"xla_cpu_small_while_loop_byte_threshold={SMALL_LOOP_BYTES}"


def test_flag_is_added_once_and_joins_existing_extra_options() -> None:
    assert small_loop_flags("") == f"--xla_backend_extra_options={SETTING}"
    assert small_loop_flags("--xla_dump_to=dumps") == (
        f"--xla_dump_to=dumps --xla_backend_extra_options={SETTING}"
    )
    joined = small_loop_flags("--xla_backend_extra_options=a=1 --xla_foo=2")
    assert joined == f"--xla_backend_extra_options=a=1,{SETTING} --xla_foo=2"
    assert small_loop_flags(joined) == joined
    # A threshold the user chose is theirs.
    own = "--xla_backend_extra_options=xla_cpu_small_while_loop_byte_threshold=7"
    assert small_loop_flags(own) == own


def test_switch_off_leaves_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINIPPL_XLA_FLAGS", "0")
    monkeypatch.setenv("XLA_FLAGS", "--xla_foo=1")
    assert apply_small_loop_flags() is False
    import os

    assert os.environ["XLA_FLAGS"] == "--xla_foo=1"


@pytest.mark.parametrize("before", ["--xla_foo=1", None])
def test_child_environment_can_have_the_flags_from_before(
    monkeypatch: pytest.MonkeyPatch, before: str | None
) -> None:
    """The benchmarks start NumPyro's fresh processes as its users run it, without ours."""
    import os

    monkeypatch.delenv("MINIPPL_XLA_FLAGS", raising=False)
    monkeypatch.setattr(xla_cpu, "_jax_started", lambda: False)
    monkeypatch.setattr(xla_cpu, "_before", xla_cpu._UNTOUCHED)
    if before is None:
        monkeypatch.delenv("XLA_FLAGS", raising=False)
    else:
        monkeypatch.setenv("XLA_FLAGS", before)
    assert flags_before({"A": "1"}) == {"A": "1"}  # nothing changed yet: nothing to undo
    assert apply_small_loop_flags() is True
    assert apply_small_loop_flags() is True  # a second import changes nothing
    assert SETTING in os.environ["XLA_FLAGS"]
    child = flags_before(dict(os.environ))
    assert child.get("XLA_FLAGS") == before
    assert {k: v for k, v in child.items() if k != "XLA_FLAGS"} == {
        k: v for k, v in os.environ.items() if k != "XLA_FLAGS"
    }


def _potential(z: Any) -> Any:
    import jax.numpy as jnp

    return 0.5 * jnp.sum(z["x"] ** 2) + 0.1 * jnp.sum(z["x"] ** 4)


@pytest.mark.parametrize("robust", [True, False])
def test_vmapped_nuts_loop_has_no_scatter(jax_backend: Backend, robust: bool) -> None:
    # XLA compiles a loop as one function only if it holds no scatter, sort or custom call.
    # With chains vmapped, an indexed update at a per-chain index becomes a scatter: the
    # trajectory must keep writing its checkpoints with selects.
    import jax

    kernel = NUTS(potential_fn=_potential, robust_u_turn=robust)
    keys = jax_backend.split(jax_backend.key(0), 2)
    init = {"x": np.zeros(3, np.float32)}
    chains = [kernel.init(key, 10, init, (), {}) for key in keys]
    state = jax.tree_util.tree_map(lambda *xs: jax.numpy.stack(xs), *chains)
    step = jax.jit(jax.vmap(kernel.sample, in_axes=(0, None, None)))
    text = step.lower(state, (), {}).compile().as_text()
    assert "while" in text
    for op in (" scatter(", " sort(", " custom-call("):
        assert op not in text, op

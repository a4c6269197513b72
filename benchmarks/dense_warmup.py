"""Leapfrog steps per warmup iteration of dense adaptation, with and without shrinkage.

100-d Gaussian, covariance Q diag(s) Q^T with s log-spaced over [0.1, 10] (condition
number 100) and a random rotation Q; 1000 warmup + 500 sampling iterations; JAX, x64;
minippl kernels run through a jitted scan over `kernel.sample`, NumPyro through its MCMC.

Run: ``python -m benchmarks.dense_warmup [CHAINS]`` (a standalone measurement script: x64 is
switched on before the samplers are imported, hence the import order).
"""
# ruff: noqa: E402, E501

import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

jax.config.update("jax_enable_x64", True)
import minippl

minippl.set_backend("jax")
from numpyro.infer import MCMC
from numpyro.infer import NUTS as NNUTS

from minippl.infer.hmc.adaptation import build_adaptation_schedule
from minippl.infer.hmc.kernels import NUTS

D, NW, NS = 100, 1000, 500
CHAINS = int(sys.argv[1]) if len(sys.argv) > 1 else 2
rng = np.random.default_rng(0)
Q, _ = np.linalg.qr(rng.normal(size=(D, D)))
s = np.logspace(-1, 1, D)
cov = Q @ np.diag(s) @ Q.T
P = jnp.asarray(np.linalg.inv(cov))


def pot(z):
    x = z["x"]
    return 0.5 * x @ (P @ x)


windows = build_adaptation_schedule(NW)


def run_minippl(**kw):
    k = NUTS(potential_fn=pot, **kw)
    keys = jax.random.split(jax.random.PRNGKey(1), CHAINS)
    inits = {"x": jnp.asarray(rng.uniform(-2, 2, size=(CHAINS, D)))}
    states = [k.init(keys[c], NW, {"x": inits["x"][c]}, (), {}) for c in range(CHAINS)]
    st = jax.tree.map(lambda *xs: jnp.stack(xs), *states)
    step = jax.vmap(lambda s: k.sample(s, (), {}))

    @jax.jit
    def loop(st):
        def body(s, _):
            s = step(s)
            return s, (s.num_steps, s.z["x"], s.accept_prob)

        return jax.lax.scan(body, st, None, length=NW + NS)

    t = time.time()
    st, (steps, xs, acc) = loop(st)
    steps.block_until_ready()
    return np.asarray(steps), np.asarray(xs), time.time() - t


def run_numpyro(dense):
    k = NNUTS(potential_fn=pot, dense_mass=dense)
    m = MCMC(
        k,
        num_warmup=NW,
        num_samples=NS,
        num_chains=CHAINS,
        chain_method="vectorized",
        progress_bar=False,
    )
    t = time.time()
    init = {"x": jnp.asarray(rng.uniform(-2, 2, size=(CHAINS, D)))}
    m.warmup(
        jax.random.PRNGKey(1), init_params=init, collect_warmup=True, extra_fields=("num_steps",)
    )
    w = np.asarray(m.get_extra_fields(group_by_chain=True)["num_steps"]).T
    m.run(jax.random.PRNGKey(2), extra_fields=("num_steps",))
    sm = np.asarray(m.get_extra_fields(group_by_chain=True)["num_steps"]).T
    xs = np.asarray(m.get_samples(group_by_chain=True)["x"]).transpose(1, 0, 2)
    return (
        np.concatenate([w, sm]),
        np.concatenate([np.zeros((NW,) + xs.shape[1:]), xs]),
        time.time() - t,
    )


def ess_min(xs):
    from minippl.diagnostics import effective_sample_size

    x = xs[NW:].transpose(1, 0, 2)  # chains, draws, D
    return float(np.min(effective_sample_size(x)))


def report(name, steps, xs, secs):
    per_window = [steps[w.start : w.end + 1].mean() for w in windows]
    line = (
        f"{name:38s} warmup {steps[:NW].mean():7.1f}  sampling {steps[NW:].mean():6.1f}  windows "
        + " ".join(f"{v:6.1f}" for v in per_window)
    )
    line += f"  minESS {ess_min(xs):6.0f}  ({secs:.0f}s)"
    print(line, flush=True)


print("windows", [(w.start, w.end) for w in windows])
report("numpyro dense", *run_numpyro(True))
report(
    "minippl dense, no shrinkage, plain U",
    *run_minippl(dense_mass=True, dense_shrinkage=False, robust_u_turn=False),
)
report(
    "minippl dense, shrinkage, plain U",
    *run_minippl(dense_mass=True, dense_shrinkage=True, robust_u_turn=False),
)
report("minippl dense, shrinkage (defaults)", *run_minippl(dense_mass=True))
report("numpyro diag", *run_numpyro(False))
report("minippl diag (defaults)", *run_minippl(dense_mass=False))

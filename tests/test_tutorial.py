"""The tutorial: every section runs and prints the guide's values; the CLI; the email data.

The sections run in this process, each once (a module-scoped cache), with the MCMC runs
shrunk by ``MINIPPL_TUTORIAL_SIZE=small``. ``test_full_size_fits`` runs the email and
eight-schools sections at the guide's sizes (marked slow; CI runs it).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import importlib
import io
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import minippl
import tutorial
from tutorial import SECTIONS, find_section, run_section

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"  # CI's copy of the guide's data, when present


@pytest.fixture(scope="module")
def common(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """``tutorial.common`` on the JAX backend, writing figures to a temporary folder."""
    from minippl import backend as selection

    previous = selection.current().name
    jax_backend = minippl.set_backend("jax")
    # Start JAX before tutorial.common asks for four CPU devices, so that request is
    # refused and the device count of the rest of the test session stays as it was.
    jax_backend.xp.zeros(1).block_until_ready()
    import tutorial.common as module

    if module.backend.name != "jax":  # imported earlier under another backend
        module = importlib.reload(module)
    out = tmp_path_factory.mktemp("tutorial_output")
    module.configure(out=out)
    try:
        yield module
    finally:
        module._settings.update(out=None, data=None)
        minippl.set_backend(previous)


@pytest.fixture(scope="module")
def run(common: Any) -> Callable[[str], tuple[str, dict[str, Any]]]:
    """Run a section once (small MCMC sizes) and return what it printed and its globals."""
    done: dict[str, tuple[str, dict[str, Any]]] = {}

    def run_once(name: str) -> tuple[str, dict[str, Any]]:
        module = find_section(name)
        if module not in done:
            buffer = io.StringIO()
            with pytest.MonkeyPatch.context() as patch:
                patch.setenv("MINIPPL_TUTORIAL_SIZE", "small")
                with contextlib.redirect_stdout(buffer):
                    namespace = run_section(module)
            done[module] = (buffer.getvalue(), namespace)
        return done[module]

    return run_once


def lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines()]


# -- the seed-only values, exactly as the guide prints them (JAX backend) ---------------------

SEED_ONLY = {
    "s02": ["y_data[:3]: [-2.697118  -2.4372127 -3.127933 ]"],
    "s03": [
        "Sampled value: -2.4425",
        "Sampled value (wrapper): -2.4425",
        "        Site |            Type |  is_observed | Value shape",
        "   intercept |          sample |        False | ()",
        "       slope |          sample |        False | ()",
        "       sigma |          sample |        False | ()",
        "          mu |   deterministic |          N/A | (50,)",
        "        data |           plate |          N/A | (50,)",
        "         obs |          sample |        False | (50,)",
        " 'value': Array(-6.2873883, dtype=float32),",
        "[1353695780 2116000888], 'sample_shape': ()},",
    ],
    "s04": [
        "  slope value: 3.0",
        "  slope is_observed: True",
        "  slope is_observed: False",
    ],
    "s05": [
        "Sites in blocked trace: ['intercept', 'slope', 'mu', 'data', 'obs']",
        "Sites in exposed trace: ['intercept', 'slope']",
        "Sites (hiding unobserved samples): ['mu', 'data']",
        "obs value[:3]: [-2.697118  -2.4372127 -3.127933 ]",
        "y_data[:3]: [-2.697118  -2.4372127 -3.127933 ]",
        "obs was_observed: True",
        "obs value[:3]: [-15.044792 -12.289793 -10.538498] (sampled, not y_data!)",
        "Without lift: 's' type = param",
        "With lift: 's' type = sample",
        "  's' value = 0.0073",
    ],
    "s06": [
        "Sites: ['first::z', 'second/z', 'diff']",
        "Original slope: -6.2874",
        "Replayed slope: -6.2874",
        "Values match despite different seed!",
    ],
    "s07": [
        "obs scale (no handler): None",
        "obs scale (with handler): 10.0",
        "obs fn type: MaskedDistribution",
    ],
    "s08": [
        "Natural: z = -1.442, y = -2.071",
        "  Trace sites: ['z', 'y']",
        "  'z' in trace (fresh sample, unused downstream): value=-1.442, is_observed=False",
        "  Returned y: 4.371 (downstream used the intervened z=5.0)",
    ],
    "s09": [
        "                  mu |          sample | ()",
        "                   J |           plate | (8,)",
        "    theta_decentered |          sample | (8,)",
        "               theta |   deterministic | (8,)",
        "                 obs |          sample | (8,)",
    ],
    "s10": [
        "condition(substitute(...)): slope=3.0, is_observed=True",
        "substitute(condition(...)): slope=10.0, is_observed=True",
        "Context manager style: slope = 2.5",
    ],
    "s11": [
        "Prior predictive sample shape: (50,)",
        "Posterior predictive sample shape: (50,)",
    ],
}


@pytest.mark.parametrize("section", sorted(SEED_ONLY))
def test_seed_only_values_match_the_guide_exactly(
    run: Callable[[str], tuple[str, dict[str, Any]]], section: str
) -> None:
    printed = lines(run(section)[0])
    for expected in SEED_ONLY[section]:
        assert expected in printed, f"{section} did not print {expected!r}"


# -- every section runs, and says what it should -----------------------------------------------


def test_s01_shows_the_phases_in_order(run: Callable[[str], Any]) -> None:
    printed = lines(run("s01")[0])
    phases = [line.split()[:2] for line in printed if line.startswith("phase")]
    assert phases == [["phase", "1"], ["phase", "1"], ["phase", "3"], ["phase", "3"]]
    assert [line.split()[2] for line in printed if line.startswith("phase")] == [
        "middle.process_message",
        "top.process_message",
        "top.postprocess_message",
        "middle.postprocess_message",
    ]
    assert "context manager: x = 1.0, function wrapper: x = 1.0" in printed


def test_s02_draws_the_data_and_the_model(common: Any, run: Callable[[str], Any]) -> None:
    printed, namespace = run("s02")
    assert (common.out_dir() / "s02_synthetic_data.png").is_file()
    assert any(
        line.startswith("[graph] ") and "s02_linear_model" in line for line in lines(printed)
    )
    assert "mu -> obs" in namespace["graph"].source
    assert "tutorial/common.py holds the same x_data, y_data and linear model." in printed


def test_s08_fits_and_compares_the_ate(common: Any, run: Callable[[str], Any]) -> None:
    printed, namespace = run("s08")
    assert "b_email" in printed and "Number of divergences" in printed
    assert "ATE, do(email=1) - do(email=0):" in printed
    ate, b_email = namespace["ate_posterior"], namespace["posterior_samples"]["b_email"]
    assert ate.shape == b_email.shape
    assert abs(float(ate.mean()) - float(b_email.mean())) < 0.5
    for name in ("s08_email_model", "s08_email_trace", "s08_b_email_posterior", "s08_ate_forest"):
        assert list(common.out_dir().glob(f"{name}.*")), f"no figure {name}"


def test_s09_counts_divergences(run: Callable[[str], Any]) -> None:
    printed, namespace = run("s09")
    assert "Number of divergences (centered):" in printed
    assert "Number of divergences (non-centered):" in printed
    assert "theta_decentered[7]" in printed
    assert namespace["n_divergences_noncentered"] >= 0


def test_s10_explains_the_two_nestings(run: Callable[[str], Any]) -> None:
    printed, namespace = run("s10")
    assert namespace["story1"]["slope"].changed_by("condition") == ("value", "is_observed")
    assert namespace["story2"]["slope"].changed_by("substitute") == ("value",)
    assert "stack, bottom to top: seed -> substitute(data: slope) -> condition(data: slope)" in (
        printed
    )
    assert "value: 10.0 -> 3.0" in printed and "value: 3.0 -> 10.0" in printed


def test_s11_recipe_and_predictive(common: Any, run: Callable[[str], Any]) -> None:
    printed, namespace = run("s11")
    assert "Log-likelihood shape: (50,), sum:" in printed
    assert namespace["pred_samples"]["obs"].shape[1:] == (50,)
    for name in (
        "s11_prior_predictive",
        "s11_posterior_predictive",
        "s11_posterior_predictive_hdi",
    ):
        assert (common.out_dir() / f"{name}.png").is_file()


def test_s12_measures_every_handler(run: Callable[[str], Any]) -> None:
    printed, namespace = run("s12")
    table = {row[0]: row for row in namespace["rows"]}
    assert set(table) == set(namespace["cases"])
    assert table["trace"][3] == "(none: reads only)"
    assert table["seed"][3] == "process: kwargs.rng_key"
    assert table["condition"][3] == "process: is_observed, value"
    assert table["substitute"][3] == "process: value"
    assert "stop" in table["block"][3] and "stop" in table["do"][3]
    assert table["scale"][3] == "process: scale" and table["mask"][3] == "process: fn"


@pytest.mark.parametrize("section", [m for m, _ in SECTIONS])
def test_sections_are_percent_notebooks(section: str) -> None:
    path = REPO / "tutorial" / f"{section}.py"
    text = path.read_text()
    assert "format_name: percent" in text
    assert "# %% [markdown]" in text and "\n# %%\n" in text
    jupytext = pytest.importorskip("jupytext")
    notebook = jupytext.read(path)
    kinds = [cell.cell_type for cell in notebook.cells]
    assert kinds[0] == "markdown" and "code" in kinds
    assert notebook.cells[0].source.startswith(f"# {int(section[1:3])}. ")


def test_every_section_names_its_source() -> None:
    for module, _ in SECTIONS:
        text = (REPO / "tutorial" / f"{module}.py").read_text()
        assert "**Source beside the text:** `minippl/" in text, module
        for path in {word.strip("`(),.") for word in text.split() if word.startswith("`minippl/")}:
            assert (REPO / path).exists(), f"{module} names {path}, which does not exist"


def test_sources_point_back_to_their_sections() -> None:
    pointers = {
        "minippl/runtime.py": "s01_effect_handlers",
        "minippl/handlers/inspection.py": "s03_inspection",
        "minippl/handlers/values.py": "s04_conditioning",
        "minippl/handlers/surgery.py": "s05_model_surgery",
        "minippl/handlers/scope.py": "s06_composition",
        "minippl/handlers/weights.py": "s07_scale_mask",
        "minippl/handlers/do.py": "s08_causal_do",
        "minippl/handlers/reparam.py": "s09_reparam",
        "minippl/explain.py": "s10_composing",
        "minippl/render.py": "s02_model",
    }
    for path, section in pointers.items():
        assert f"tutorial/{section}.py" in (REPO / path).read_text(), path


# -- the command line -------------------------------------------------------------------------


@pytest.fixture
def settings_restored(common: Any) -> Iterator[None]:
    """``main`` sets --out and --data for the session; put the test settings back after."""
    saved = dict(common._settings)
    try:
        yield
    finally:
        common._settings.update(saved)


def test_find_section_accepts_numbers_prefixes_and_topics() -> None:
    assert find_section("3") == find_section("s03") == find_section("inspection")
    assert find_section("s03_inspection.py") == "s03_inspection"
    assert find_section("12") == "s12_summary"
    with pytest.raises(ValueError, match="s01 \\(effect_handlers\\)"):
        find_section("nonsense")


def test_main_runs_one_section_and_says_where_the_figures_are(
    settings_restored: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tutorial.__main__ import main

    assert main(["s04", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "4. Conditioning: condition vs substitute" in printed
    assert "  slope is_observed: False" in printed
    assert f"the figures folder is {tmp_path.resolve()}" in printed
    with pytest.raises(SystemExit):
        main(["nonsense"])


def test_main_reports_missing_data_and_goes_on(
    settings_restored: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tutorial.__main__ import main

    missing = tmp_path / "nowhere"
    assert main(["s08", "s04", "--out", str(tmp_path), "--data", str(missing)]) == 1
    out, err = capsys.readouterr()
    assert "Natural: z = -1.442, y = -2.071" in out  # the part that needs no data ran
    assert "slope is_observed: False" in out  # and so did the next section
    assert "--data PATH" in err and "MINIPPL_DATA_DIR" in err
    assert "Sections that could not run: s08_causal_do" in err


def test_python_dash_m_tutorial(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tutorial", "s06", "--out", str(tmp_path / "figs")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "Sites: ['first::z', 'second/z', 'diff']" in result.stdout
    assert "(tutorial/s06_composition.py)" in result.stdout


# -- the email data: --data, MINIPPL_DATA_DIR, the shipped copy, the message ------------------


@pytest.fixture
def no_data_settings(common: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No --data and no MINIPPL_DATA_DIR: what a user who just cloned the repository has."""
    saved = dict(common._settings)
    common._settings["data"] = None
    monkeypatch.delenv("MINIPPL_DATA_DIR", raising=False)
    try:
        yield
    finally:
        common._settings.update(saved)


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return list(rows[0]), rows


def test_with_no_flag_and_no_environment_the_shipped_copy_is_read(
    common: Any, no_data_settings: None
) -> None:
    path = common.email_data_path()
    assert path == REPO / "tutorial" / "data" / "collections_email.csv"
    columns, rows = read_csv(path)
    assert columns == ["payments", "email", "opened", "agreement", "credit_limit", "risk_score"]
    assert len(rows) == 5000
    assert common.load_email_data().shape == (5000, 6)
    if (SHARED_DATA / "collections_email.csv").is_file():  # the copy the guide's checks used
        assert read_csv(SHARED_DATA / "collections_email.csv") == (columns, rows)


def test_the_shipped_copy_carries_its_source_licence_and_checksum() -> None:
    folder = REPO / "tutorial" / "data"
    digest = hashlib.sha256((folder / "collections_email.csv").read_bytes()).hexdigest()
    source = (folder / "SOURCE.md").read_text()
    assert digest in source
    assert "github.com/matheusfacure/python-causality-handbook" in source
    licence = (folder / "LICENSE").read_text()
    assert licence.startswith("MIT License") and "Copyright (c) 2020 Matheus Facure" in licence
    # A non-editable install carries the three files (setuptools package-data).
    shipped = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert set(shipped["package-data"]["tutorial"]) == {
        "data/collections_email.csv",
        "data/SOURCE.md",
        "data/LICENSE",
    }


def test_a_data_path_that_holds_nothing_names_both_ways(
    common: Any, no_data_settings: None, tmp_path: Path
) -> None:
    common.configure(data=tmp_path / "nowhere")
    with pytest.raises(common.DataNotFoundError) as caught:
        common.email_data_path()
    message = str(caught.value)
    assert f"collections_email.csv is not at {tmp_path / 'nowhere'}." in message
    assert "python -m tutorial --data PATH" in message
    assert "MINIPPL_DATA_DIR=FOLDER" in message


def test_data_from_flag_or_environment(
    common: Any, no_data_settings: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "collections_email.csv").write_text("payments,email\n")
    monkeypatch.setenv("MINIPPL_DATA_DIR", str(folder))
    assert common.email_data_path() == folder / "collections_email.csv"
    monkeypatch.delenv("MINIPPL_DATA_DIR")
    common.configure(data=folder / "collections_email.csv")
    assert common.email_data_path() == folder / "collections_email.csv"
    common.configure(data=tmp_path / "elsewhere")
    with pytest.raises(common.DataNotFoundError, match="is not at"):
        common.email_data_path()


def test_sizes(monkeypatch: pytest.MonkeyPatch, common: Any) -> None:
    monkeypatch.delenv("MINIPPL_TUTORIAL_SIZE", raising=False)
    assert common.mcmc_sizes() == (1000, 1000, 4)
    monkeypatch.setenv("MINIPPL_TUTORIAL_SIZE", "small")
    assert common.mcmc_sizes() == (200, 200, 2)
    monkeypatch.setenv("MINIPPL_TUTORIAL_SIZE", "huge")
    with pytest.raises(ValueError, match="'full' or 'small'"):
        common.mcmc_sizes()


def test_guide_key_replays_the_guides_splits(common: Any) -> None:
    import jax

    key = jax.random.key(42)
    for step in range(1, 8):
        key, subkey = jax.random.split(key)
        assert bool(
            (jax.random.key_data(common.guide_key(step)) == jax.random.key_data(subkey)).all()
        )


# -- the guide's sizes (slow; CI runs it) -------------------------------------------------------


@pytest.mark.slow
def test_full_size_fits(common: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The email and eight-schools sections at 4 chains x (1000 warmup + 1000 draws)."""
    monkeypatch.delenv("MINIPPL_TUTORIAL_SIZE", raising=False)
    with contextlib.redirect_stdout(io.StringIO()):
        email = run_section("s08_causal_do")
        schools = run_section("s09_reparam")
    b_email = email["posterior_samples"]["b_email"]
    assert b_email.shape == (4000,)
    assert abs(float(b_email.mean()) - 4.28) < 0.5
    assert abs(float(b_email.std()) - 2.06) < 0.3
    assert schools["n_divergences_centered"] > schools["n_divergences_noncentered"]


def test_tutorial_package_lists_its_sections() -> None:
    assert len(tutorial.SECTIONS) == 14
    for module, _ in SECTIONS:
        assert (REPO / "tutorial" / f"{module}.py").is_file()


def test_control_flow_section_traces_conditions_and_forecasts(
    run: Callable[[str], tuple[str, dict[str, Any]]],
) -> None:
    printed, namespace = run("s13")
    assert " level: value shape (5,), batch shape (5,)" in lines(printed)
    assert "control_flow: has a key: True, handlers to apply inside: ['condition']" in printed
    assert "level is_observed: True value: [0. 1. 2. 3. 4.]" in printed
    draws = namespace["level_draws"]
    assert draws.shape == (200, 50)
    assert (draws[:, :40] == namespace["samples"]["level"]).all()


def test_svi_section_fits_lifts_and_compares_with_nuts(
    common: Any, run: Callable[[str], tuple[str, dict[str, Any]]]
) -> None:
    printed, namespace = run("s14")
    text = lines(printed)
    # SVI's point estimates of the param sites agree with NUTS on the lifted model.
    fit, posterior = namespace["fit"], namespace["posterior"]
    for name in ("intercept", "slope"):
        assert abs(float(fit.params[name]) - float(posterior[name].mean())) < 0.05, name
    losses = namespace["losses"]
    assert len(losses) == 2 * namespace["num_steps"] and losses[-50:].mean() < losses[:50].mean()
    # Which handler set 'sigma' in each program of one ELBO evaluation.
    assert (
        "'sigma' in the guide: value from ['the default draw'], stack seed -> substitute -> trace"
        in text
    )
    assert (
        "'sigma' in the model: value from ['replay'], stack seed -> replay -> substitute -> trace"
        in text
    )
    # block hides the autoguide's prototype run of the model from the outer trace.
    assert (
        "what the guide's first call shows to an outer trace: "
        "['sigma_auto_loc', 'sigma_auto_scale', 'sigma']" in text
    )
    # Mean field is narrower than NUTS for tau, as the text says.
    approx, exact = namespace["approx"], namespace["exact"]
    assert float(approx["tau"].std()) < float(exact["tau"].std())
    assert (common.out_dir() / "s14_svi_eight_schools.png").is_file()

"""The effect-handlers guide, rebuilt on minippl: one runnable section per file.

``python -m tutorial`` runs every section in order and prints what each prints;
``python -m tutorial SECTION`` runs one (``3``, ``s03``, ``inspection`` or
``s03_inspection``). The sections are plain Python in jupytext's "percent" format, so
``jupytext --to notebook tutorial/s03_inspection.py`` (or opening the file in an editor that
understands ``# %%`` cells) turns each into a notebook.

Each section names, at its top, the minippl files and functions that implement what it shows;
those files' docstrings point back to the section.
"""

from __future__ import annotations

import runpy

SECTIONS: tuple[tuple[str, str], ...] = (
    ("s01_effect_handlers", "What are effect handlers?"),
    ("s02_model", "Specifying the model"),
    ("s03_inspection", "Inspection: seed and trace"),
    ("s04_conditioning", "Conditioning: condition vs substitute"),
    ("s05_model_surgery", "Model surgery: block, uncondition, lift"),
    ("s06_composition", "Composition: scope and replay"),
    ("s07_scale_mask", "Scaling and masking: scale and mask"),
    ("s08_causal_do", "Causal inference: do"),
    ("s09_reparam", "Reparameterization: reparam"),
    ("s10_composing", "Composing handlers: nesting and order"),
    ("s11_predictive", "Practical recipe: posterior predictive with handlers"),
    ("s12_summary", "Summary and references"),
    ("s13_control_flow", "Effect handlers meet compiled control flow: scan"),
    ("s14_svi", "Variational inference: SVI from the handlers"),
)


def find_section(name: str) -> str:
    """The module name of the section called ``name``: its number (``3``), its prefix
    (``s03``), its topic (``inspection``) or its full module name."""
    wanted = name.strip().lower().removesuffix(".py").split("/")[-1]
    for module, _ in SECTIONS:
        number = module[1:3]
        topic = module[4:]
        if wanted in (module, module[:3], number, number.lstrip("0"), topic):
            return module
    known = ", ".join(f"{module[:3]} ({module[4:]})" for module, _ in SECTIONS)
    raise ValueError(f"no tutorial section {name!r}; the sections are {known}")


def run_section(module: str) -> dict[str, object]:
    """Run one section as a script; returns its global names (its results)."""
    return runpy.run_module(f"tutorial.{module}", run_name="__main__")

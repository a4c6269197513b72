"""Every effect handler, under NumPyro's names (``from minippl import handlers``).

Each handler's docstring says which message types it acts on, in which phase, and which
fields it reads and writes; ``tutorial/s12_summary.py`` collects them in one table. Its
example assumes ``import minippl``, ``import minippl.distributions as dist`` and ``from
minippl import handlers``; ``tests/test_docstring_examples.py`` runs them on both backends.

Every constructor has one shape: the model first, options by keyword, a required option
checked with a message of its own, then ``Messenger.__init__``. ``duplicates`` pairs them by
that shape; it is kept, so that each handler reads alone, as NumPyro's do.
"""

from minippl.handlers.do import do
from minippl.handlers.inspection import seed, trace
from minippl.handlers.reparam import infer_config, reparam
from minippl.handlers.scope import scope
from minippl.handlers.surgery import block, lift, uncondition
from minippl.handlers.values import condition, replay, substitute
from minippl.handlers.weights import mask, scale
from minippl.runtime import Messenger

__all__ = [
    "Messenger",
    "block",
    "condition",
    "do",
    "infer_config",
    "lift",
    "mask",
    "replay",
    "reparam",
    "scale",
    "scope",
    "seed",
    "substitute",
    "trace",
    "uncondition",
]

"""Control flow that sample sites may live in: NumPyro's ``contrib.control_flow``.

Tutorial: "Effect handlers meet compiled control flow" (``tutorial/s13_control_flow.py``).
Read ``scan.py`` first: it tells how a handler reaches inside a compiled loop.
"""

from minippl.control_flow.cond import cond
from minippl.control_flow.scan import scan
from minippl.control_flow.stacked import ScannedDistribution

__all__ = ["ScannedDistribution", "cond", "scan"]

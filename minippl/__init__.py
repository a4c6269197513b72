"""minippl: a small, typed, readable probabilistic programming library."""

from minippl.backend import enable_x64, set_backend, set_host_device_count

__all__ = ["enable_x64", "set_backend", "set_host_device_count"]

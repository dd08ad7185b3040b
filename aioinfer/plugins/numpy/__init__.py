"""The NUMPY plugin (our own engine); ``CPU`` names it until the proxy takes that name."""

from .plugin import NumpyPlugin

__all__ = ["NumpyPlugin"]

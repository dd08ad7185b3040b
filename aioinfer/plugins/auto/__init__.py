"""AUTO: picks the device for a model, serves from a helper while it compiles, falls back."""

from .plugin import AutoPlugin

__all__ = ["AutoPlugin"]

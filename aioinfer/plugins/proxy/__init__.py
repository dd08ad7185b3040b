"""The proxy: one device name (``CPU``) over every plugin that runs on the same hardware."""

from .plugin import HOST_CPU_PLUGINS, ProxyPlugin

__all__ = ["HOST_CPU_PLUGINS", "ProxyPlugin"]

"""HETERO: one model split over several devices, its subgraphs run as a pipeline of stages."""

from .compiled_model import HeteroCompiledModel
from .plugin import HeteroPlugin

__all__ = ["HeteroCompiledModel", "HeteroPlugin"]

"""MULTI: the requests of one model spread over several devices, pulled by whichever is free."""

from .compiled_model import MultiCompiledModel, MultiInferRequest
from .dispatch import Dispatcher, DispatchExecutor, Lane, Lanes
from .plugin import MultiPlugin

__all__ = ["DispatchExecutor", "Dispatcher", "Lane", "Lanes", "MultiCompiledModel",
           "MultiInferRequest", "MultiPlugin"]

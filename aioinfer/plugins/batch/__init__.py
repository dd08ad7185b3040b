"""BATCH: concurrent requests coalesced into one run of a model compiled for batch N."""

from .batcher import Batcher
from .compiled_model import BatchCompiledModel, BatchInferRequest
from .plugin import BatchPlugin, batchability

__all__ = ["BatchCompiledModel", "BatchInferRequest", "BatchPlugin", "Batcher", "batchability"]

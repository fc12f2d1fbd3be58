"""Policy optimizers: the distributed strategies, each composed from the primitives."""

from .async_gradients import AsyncGradients
from .async_samples import AsyncSamples
from .base import PolicyOptimizer, TrainingStats
from .sync_allreduce import SyncAllReduce
from .sync_samples import SyncSamples

__all__ = ["AsyncGradients", "AsyncSamples", "PolicyOptimizer", "SyncAllReduce", "SyncSamples", "TrainingStats"]

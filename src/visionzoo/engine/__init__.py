"""Engineering around a method: Lightning module adapter, trainer wiring, data loading, checkpoints.

Methods implement :class:`Task` (model + loss + metrics) and never touch devices, DDP, precision or
checkpoint files; :func:`fit` does.
"""

from visionzoo.engine.config import OptimConfig, TrainConfig
from visionzoo.engine.task import StepContext, StepOutput, Task

__all__ = ["OptimConfig", "TrainConfig", "Task", "StepContext", "StepOutput"]

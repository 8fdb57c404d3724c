"""ntkexp: Hydra-configured experiments that judge neural architectures with Neural-Tangent-Kernel metrics."""

__version__ = "0.1.0"

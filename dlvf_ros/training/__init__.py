"""Training: pair generation, the differentiable pose pipeline, losses, trainer, test."""

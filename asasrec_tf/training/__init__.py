"""Training: the fit loop with evaluation, TensorBoard and checkpoints."""

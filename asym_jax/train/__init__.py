"""Training: the ``sr_gan`` job (config, state, jitted adversarial step, loop with checkpoints)."""

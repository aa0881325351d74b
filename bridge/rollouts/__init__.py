"""Canary rollouts of instance versions (docs/rollouts.md): versions, the wave driver, its gate and its API."""

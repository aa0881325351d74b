"""Serena instance: configuration template, config writer and the ``python -m instances.serena`` entrypoint."""

from instances.serena.config import (
    serena_command,
    serena_environment,
    serena_executable,
    write_serena_home,
)

__all__ = ["serena_command", "serena_environment", "serena_executable", "write_serena_home"]

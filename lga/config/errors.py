"""The one error of the config layer: :class:`ConfigError` (a wrong key or value, named)."""

from __future__ import annotations


class ConfigError(ValueError):
    """A config key that does not exist, or a value of the wrong type or outside what is allowed."""

"""waza: runtime telemetry for AI agent skills."""

__version__ = "0.2.0"

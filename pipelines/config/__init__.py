"""Typed configuration: `base.yaml` plus one overlay per environment holding only its differences."""

from pipelines.config.loader import ENVIRONMENTS, ConfigError, load_config
from pipelines.config.model import KioskConfig

__all__ = ["ENVIRONMENTS", "ConfigError", "KioskConfig", "load_config"]

"""harness.yaml: the settings (`model`, the gates' in `gates`, the planner's in `planner`), the reader that validates them (`reader`,
`load`), the commented default `harness init` writes (`defaults`), and which harness.yaml judges a change
(`judging`: the base commit's). The names below are the package's public face; import them from here."""
from __future__ import annotations

from harness.config.defaults import DEFAULT_CONFIG_YAML
from harness.config.judging import OPERATOR_SETTINGS, JudgingSettings, config_at, judging_settings
from harness.config.load import load_config, parse_config
from harness.config.model import (
    AGENT_PHASES,
    CONFIG_FILENAME,
    PYTHON_PLACEHOLDER,
    AgentConfig,
    CapsConfig,
    CommitConfig,
    Config,
    ExtraSelector,
    GatesConfig,
    LeasesConfig,
    LintSettings,
    PushConfig,
    PytestConfig,
    SelectorsConfig,
)
from harness.config.planner import PlannerConfig

__all__ = [
    "AGENT_PHASES", "CONFIG_FILENAME", "DEFAULT_CONFIG_YAML", "OPERATOR_SETTINGS", "PYTHON_PLACEHOLDER", "AgentConfig",
    "CapsConfig", "CommitConfig", "Config", "ExtraSelector", "GatesConfig", "JudgingSettings", "LeasesConfig", "LintSettings",
    "PlannerConfig", "PushConfig", "PytestConfig", "SelectorsConfig", "config_at", "judging_settings", "load_config", "parse_config",
]

"""Small helpers shared by mmext's tools."""
from .cli import add_common_args, build_runner, load_analysis_config, load_config

__all__ = ['add_common_args', 'load_config', 'load_analysis_config', 'build_runner']

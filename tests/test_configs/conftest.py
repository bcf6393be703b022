"""Shared by the config tests."""
import pytest


def _unscoped(value):
    """A config value without the ``_scope_`` keys that ``mmseg::`` / ``mmdet::`` bases add."""
    if isinstance(value, dict):
        return {k: _unscoped(v) for k, v in value.items() if k != '_scope_'}
    if isinstance(value, (list, tuple)):
        return type(value)(map(_unscoped, value))
    return value


@pytest.fixture
def unscoped():
    return _unscoped

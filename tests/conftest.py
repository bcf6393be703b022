"""Fixtures shared by the whole suite."""
import pytest


@pytest.fixture(scope='session')
def data_root(tmp_path_factory):
    """Where the tiny test configs' synthetic dataset (8 train / 4 val images of 64 px) is generated on
    first use; one folder for the session, never the user's data/."""
    return tmp_path_factory.mktemp('synthetic_shapes')

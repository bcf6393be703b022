"""Reading bounds from the environment: the one parser behind ``MMEXT_CHECKPOINT_LIMITS``
(:mod:`mmext.engine.checkpoint.limits`) and ``MMEXT_DEPLOY_LIMITS`` (:mod:`mmext.deploy.limits`).
Imports nothing from OpenMMLab."""
import dataclasses
import os
from typing import Type, TypeVar

Limits = TypeVar('Limits')


def limits_from_environment(limits_class: Type[Limits], env_var: str,
                            error: Type[Exception] = ValueError) -> Limits:
    """``limits_class`` (a dataclass of integer bounds) with the overrides of ``env_var``: comma-separated
    ``name=integer`` items, e.g. ``max_tensor_bytes=1073741824,max_image_pixels=100000000``; the
    defaults where the variable is unset or empty.

    Raises:
        error: for an unknown name or a value that is not a non-negative integer.
    """
    text = os.environ.get(env_var, '').strip()
    if not text:
        return limits_class()
    names = {field.name for field in dataclasses.fields(limits_class)}
    overrides = {}
    for item in text.split(','):
        name, _, value = item.partition('=')
        if name.strip() not in names or not value.strip().isdigit():
            raise error(f'{env_var}={text!r}: expected comma-separated name=integer items with names from '
                        f'{sorted(names)}')
        overrides[name.strip()] = int(value)
    return limits_class(**overrides)

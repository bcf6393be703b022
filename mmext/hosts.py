"""The host libraries mmext plugs into, and when ``import mmext`` registers into each.

mmext's classes live in one package per host: :mod:`mmext.seg` (needs mmsegmentation) and
:mod:`mmext.det` (needs mmdetection); importing one registers its classes, as importing ``mmseg.models``
does. ``import mmext`` (what ``custom_imports=dict(imports=['mmext'])`` does) registers every host that
is installed, the way the host registers its own modules:

- a host already imported (an mm config being read by the host's tools) is registered at once;
- a host installed but not imported yet is registered when its registries are first used: when
  ``<host>.registry`` has been imported, mmext's package is added to the import locations of its
  registries, next to the host's own (``mmseg.models`` ...), so mmengine imports both at the first
  build or lookup.

mmext's mmengine patches come with the registration (:mod:`mmext.seg` and :mod:`mmext.det` install
them), and at once if mmengine is imported already. So ``import mmext.ops`` (which imports ``mmext``
first) in a fresh process imports no OpenMMLab package and patches nothing.
"""
import importlib
import importlib.abc
import importlib.util
import logging
import sys

# mmext package -> the host library it registers into (import name, distribution name).
HOSTS = {'mmext.seg': ('mmseg', 'mmsegmentation'), 'mmext.det': ('mmdet', 'mmdet')}

logger = logging.getLogger('mmext')


def installed_hosts():
    """The mmext packages whose host library is installed, e.g. ``['mmext.seg', 'mmext.det']``."""
    return [package for package, (host, _) in HOSTS.items() if importlib.util.find_spec(host) is not None]


class _AfterImport(importlib.abc.MetaPathFinder):
    """Calls ``callback(module)`` once the module ``name`` has been executed (a one-shot finder)."""

    def __init__(self, name, callback):
        self.name, self.callback = name, callback

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_call(module):
            exec_module(module)
            self.callback(module)

        spec.loader.exec_module = exec_then_call
        return spec


def _patch_mmengine():
    from mmext.engine import patch_mmengine  # imported here: importing mmext must not import mmengine
    patch_mmengine()


def _add_location(package):
    """A callback that adds ``package`` to the locations of a host registry module's registries."""

    def add(registry_module):
        from mmengine.registry import Registry

        _patch_mmengine()  # before the host loads a checkpoint, whichever registry is used first
        for registry in vars(registry_module).values():
            # A registry without locations falls back to ``<scope>.utils.register_all_modules``; it
            # is left as it is. (Registries share one default ``locations`` list: replace, never append.)
            if isinstance(registry, Registry) and registry._locations and package not in registry._locations:
                registry._locations = [*registry._locations, package]

    return add


def _register_when_imported(registry_module, package):
    watching = any(isinstance(finder, _AfterImport) and finder.name == registry_module
                   for finder in sys.meta_path)
    if not watching:
        sys.meta_path.insert(0, _AfterImport(registry_module, _add_location(package)))


def register_installed_hosts():
    """Register :mod:`mmext.seg` / :mod:`mmext.det` into the installed hosts (see the module docstring).

    Returns:
        dict[str, str]: Each installed host's mmext package: 'registered' or 'registered when first
        used'.

    Raises:
        ImportError: Neither mmsegmentation nor mmdetection is installed.
    """
    packages = installed_hosts()
    if not packages:
        raise ImportError('mmext registers into mmsegmentation or mmdetection, and neither is installed: '
                          'pip install "mmext[seg]", "mmext[det]" or "mmext[all]"')
    if 'mmengine' in sys.modules:  # an OpenMMLab process already: its checkpoint loads are guarded now
        _patch_mmengine()
    states = {}
    for package in packages:
        host = HOSTS[package][0]
        if host in sys.modules:
            importlib.import_module(package)
            states[package] = 'registered'
        else:
            _register_when_imported(f'{host}.registry', package)
            states[package] = 'registered when first used'
    absent = [HOSTS[package][1] for package in HOSTS if package not in packages]
    logger.info('mmext: %s%s', ', '.join(f'{package} {state}' for package, state in states.items()),
                f'; {" and ".join(absent)} not installed' if absent else '')
    return states


def host_register_all_modules(package: str):
    """The ``register_all_modules`` of :mod:`mmext.seg` or :mod:`mmext.det` (``package``): the host's
    own (its modules, and its ``default_scope`` if asked); mmext's classes were registered when
    ``package`` was imported."""
    host = HOSTS[package][0]

    def register_all_modules(init_default_scope: bool = True) -> None:
        importlib.import_module(f'{host}.utils').register_all_modules(init_default_scope)

    register_all_modules.__doc__ = (f"{host}'s ``register_all_modules`` (its modules, and "
                                    f"``default_scope='{host}'`` if asked); {package}'s classes were "
                                    'registered when it was imported.')
    return register_all_modules

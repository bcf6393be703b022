"""One restricted loader for every checkpoint mmengine loads: local, remote and hub-cached.

:func:`load_checkpoint_file` is the only place mmext unpickles a checkpoint: it scans the file's
structure (:mod:`.scan`: sizes, shared references, what allowed functions are asked to do) and only then
calls ``torch.load(weights_only=True)`` with :data:`CHECKPOINT_SAFE_GLOBALS` allowed. Every refusal is an
:class:`UnsafeCheckpointError` naming the file.

:func:`install_checkpoint_loaders` routes mmengine's ``CheckpointLoader`` schemes through it:

- local paths, ``s3://`` / ``petrel://`` and ``open-mmlab://`` go to mmext's loaders below;
- ``http(s)://`` keeps mmengine's ``load_from_http`` (rank 0 downloads first), whose ``load_url`` is
  replaced by :func:`load_url`: torch.hub's, which unpickles with ``weights_only=False``, is never
  called. ``torchvision://``, ``modelzoo://`` and ``mmcls://`` resolve to ``load_from_http`` too;
- other schemes (``pavi://``, and ones registered at any time, before or after mmext) are wrapped
  when ``CheckpointLoader`` looks them up: while they run, ``torch.load`` in their thread is
  :func:`load_checkpoint_file`, and refusals become :class:`UnsafeCheckpointError`.

Downloads are cached under ``$TORCH_HOME/hub/checkpoints/<URL digest>/<file name>``: one entry per URL,
so two URLs that end in the same file name never share one. A name that carries a hash
(``name-<8+ hex digits>.pth``, as OpenMMLab and torchvision publish them) is checked against the file's
SHA-256 on every load, so a file swapped in the cache is refused, not unpickled.
"""
import contextlib
import functools
import hashlib
import io
import os
import os.path as osp
import pickle
import re
import sys
import threading
from urllib.parse import urlparse

import mmengine.runner.checkpoint as mmengine_checkpoint
import torch
from mmengine.fileio import get_file_backend
from mmengine.runner.checkpoint import CheckpointLoader

from .allow_list import (CHECKPOINT_SAFE_GLOBALS, checkpoint_globals_allowed, refused_globals,
                         weights_only_reason)
from .errors import UnsafeCheckpointError
from .message_hub import message_hub_problem
from .scan import CheckpointStructureError, scan_checkpoint

# torch.hub's naming convention: the first 8 or more hex digits of the file's SHA-256 before the suffix.
HASH_IN_NAME = re.compile(r'-([a-f0-9]{8,})\.[^.]+$')
# A loader of mmext's, or one it wrapped, carries this attribute.
_INSTALLED_MARK = '_mmext_checkpoint_loader'


def load_checkpoint_file(file, map_location=None, name=None):
    """Load a checkpoint from a path or a binary file, refusing anything unsafe.

    Args:
        file (str | BinaryIO): Local path, or a seekable binary file.
        map_location: As in ``torch.load``.
        name (str, optional): What to call the file in errors (a URL); defaults to ``file``.

    Returns:
        The unpickled checkpoint.
    """
    name = name or file
    try:
        scan_checkpoint(file, allowed_globals=CHECKPOINT_SAFE_GLOBALS)
    except CheckpointStructureError as error:
        raise UnsafeCheckpointError(name, f'{error}. mmext refuses it before unpickling anything.') from None
    try:
        with checkpoint_globals_allowed():
            checkpoint = _torch_load(file, map_location=map_location, weights_only=True)
    except UnsafeCheckpointError:
        raise
    except pickle.UnpicklingError as error:
        message = str(error)
        if 'Weights only load failed' not in message:
            raise UnsafeCheckpointError(name, f'torch could not read it ({message})') from error
        with checkpoint_globals_allowed():
            refused = refused_globals(file, message)
        raise UnsafeCheckpointError.for_globals(name, refused, weights_only_reason(message)) from error
    except Exception as error:  # MemoryError, RecursionError ...: whatever a file makes torch raise
        raise UnsafeCheckpointError(name, f'torch could not read it ({type(error).__name__}: {error})') \
            from error
    problem = message_hub_problem(checkpoint)
    if problem is not None:
        raise UnsafeCheckpointError(name, f'{problem}; mmengine would fail on it later')
    return checkpoint


def sha256_of(path, chunk=2**20):
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()


def verify_hash_in_name(path, name=None):
    """Refuse a file whose name carries a hash (``-<8+ hex>.ext``) that its content does not have."""
    match = HASH_IN_NAME.search(osp.basename(path))
    if match is None:
        return
    expected, digest = match.group(1), sha256_of(path)
    if not digest.startswith(expected):
        raise UnsafeCheckpointError(
            name or path, f'its name carries the hash {expected}, but its SHA-256 starts with '
            f'{digest[:len(expected)]}: {path} is not the file published under that name (delete it '
            'to download it again)')


def cache_path(url, model_dir=None, file_name=None):
    """Where :func:`load_url` caches ``url``: ``<model_dir>/<first 16 hex digits of the URL's
    SHA-256>/<file name>``; ``model_dir`` defaults to torch.hub's ``<hub dir>/checkpoints``.

    Raises:
        ValueError: The URL's path names no file (``http://host/``, ``http://host/models/``).
    """
    file_name = file_name or osp.basename(urlparse(url).path)
    if not file_name:
        raise ValueError(f'{url} names no file: a checkpoint URL ends in the file to download, e.g. '
                         'https://host/models/model.pth')
    model_dir = model_dir or osp.join(torch.hub.get_dir(), 'checkpoints')
    return osp.join(model_dir, hashlib.sha256(url.encode('utf-8')).hexdigest()[:16], file_name)


def load_url(url, model_dir=None, map_location=None, progress=True, check_hash=False, file_name=None):
    """torch.hub's ``load_state_dict_from_url``, loading with :func:`load_checkpoint_file` and caching
    per URL (:func:`cache_path`).

    Signature of mmengine's ``load_url``. The hash in the file name is checked on download and on every
    load from the cache, whatever ``check_hash`` says.
    """
    cached = cache_path(url, model_dir, file_name)
    os.makedirs(osp.dirname(cached), exist_ok=True)
    name = f'{url} (cached as {cached})'
    if not osp.exists(cached):
        sys.stderr.write(f'Downloading: "{url}" to {cached}\n')
        match = HASH_IN_NAME.search(osp.basename(cached))
        try:
            torch.hub.download_url_to_file(url, cached, match.group(1) if match else None, progress=progress)
        except RuntimeError as error:  # torch.hub's hash mismatch; the download was discarded
            raise UnsafeCheckpointError(name, str(error)) from error
    verify_hash_in_name(cached, name)
    return load_checkpoint_file(cached, map_location, name=name)


def load_from_local(filename, map_location=None):
    """``CheckpointLoader`` scheme ``''``: a local path."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return load_checkpoint_file(filename, map_location)


def load_from_ceph(filename, map_location=None, backend='petrel'):
    """``CheckpointLoader`` schemes ``s3://`` and ``petrel://``: the file's bytes, read by mmengine."""
    file_backend = get_file_backend(filename, backend_args={'backend': backend})
    with io.BytesIO(file_backend.get(filename)) as buffer:
        return load_checkpoint_file(buffer, map_location, name=filename)


def load_from_openmmlab(filename, map_location=None):
    """``CheckpointLoader`` schemes ``open-mmlab://`` and ``openmmlab://``, resolved by mmengine's tables
    (including a user's ``$MMENGINE_HOME/open_mmlab.json``, which may name local paths)."""
    prefix = 'open-mmlab://' if filename.startswith('open-mmlab://') else 'openmmlab://'
    model_name = filename[len(prefix):]
    model_name = mmengine_checkpoint.get_deprecated_model_names().get(model_name, model_name)
    model_url = mmengine_checkpoint.get_external_models()[model_name]
    if model_url.startswith(('http://', 'https://')):
        return mmengine_checkpoint.load_from_http(model_url, map_location=map_location)
    return load_from_local(osp.join(mmengine_checkpoint._get_mmengine_home(), model_url), map_location)


_torch_load = torch.serialization.load
_routing = threading.local()  # .depth: how many routed loaders this thread is inside
_routed_threads = 0
_routed_lock = threading.Lock()


def _routed_torch_load(f, map_location=None, *args, **kwargs):
    """``torch.load`` while a routed loader runs: :func:`load_checkpoint_file` in that loader's thread
    (whatever ``weights_only`` or ``pickle_module`` it asks for), torch's own in every other thread."""
    if getattr(_routing, 'depth', 0):
        return load_checkpoint_file(f, map_location)
    return _torch_load(f, map_location, *args, **kwargs)


@contextlib.contextmanager
def _torch_load_routed():
    """Within the block, this thread's ``torch.load`` and ``torch.serialization.load`` calls go to
    :func:`load_checkpoint_file`; the attributes are restored when no thread needs them any more."""
    global _routed_threads
    depth = getattr(_routing, 'depth', 0)
    with _routed_lock:
        if depth == 0:
            _routed_threads += 1
            torch.load = torch.serialization.load = _routed_torch_load
    _routing.depth = depth + 1
    try:
        yield
    finally:
        _routing.depth = depth
        with _routed_lock:
            if depth == 0:
                _routed_threads -= 1
                if _routed_threads == 0:
                    torch.load = torch.serialization.load = _torch_load


def _routed(loader):
    """Wraps another scheme's ``loader(filename, map_location, ...)``: the ``torch.load`` it calls is
    :func:`load_checkpoint_file`; refusals of torch's unpickler (a loader that calls it another way)
    become :class:`UnsafeCheckpointError`."""

    @functools.wraps(loader)  # CheckpointLoader logs the loader's ``__name__``
    def load(filename, *args, **kwargs):
        try:
            with _torch_load_routed(), checkpoint_globals_allowed():
                return loader(filename, *args, **kwargs)
        except UnsafeCheckpointError:
            raise
        except pickle.UnpicklingError as error:
            message = str(error)
            if 'Weights only load failed' not in message:
                raise
            raise UnsafeCheckpointError.for_globals(filename, refused_globals(None, message),
                                                    weights_only_reason(message)) from error

    setattr(load, _INSTALLED_MARK, True)
    return load


@functools.lru_cache(maxsize=None)
def restricted_loader(loader):
    """The loader mmext runs for a scheme whose registered loader is ``loader``: mmext's own for the
    local, ceph and open-mmlab schemes, ``loader`` itself if mmext made it, else :func:`_routed`."""
    if getattr(loader, _INSTALLED_MARK, False):
        return loader
    ours = {mmengine_checkpoint.load_from_local: load_from_local,
            mmengine_checkpoint.load_from_ceph: load_from_ceph,
            mmengine_checkpoint.load_from_openmmlab: load_from_openmmlab}
    return ours.get(loader) or _routed(loader)


_find_loader = CheckpointLoader._get_checkpoint_loader.__func__


def _restricted_loader_lookup(cls, path):
    """``CheckpointLoader._get_checkpoint_loader``, returning :func:`restricted_loader` of the scheme's
    loader: schemes registered at any time, even over mmext's, load through mmext."""
    loader = _find_loader(cls, path)
    return None if loader is None else restricted_loader(loader)


def install_checkpoint_loaders():
    """Route every ``CheckpointLoader`` scheme through mmext's restricted loading (module docstring):
    the registered schemes are replaced by their restricted loaders, so that ``_schemes`` shows what
    runs, and every lookup wraps whatever is registered by then. Idempotent."""
    mmengine_checkpoint.load_url = load_url
    CheckpointLoader._get_checkpoint_loader = classmethod(_restricted_loader_lookup)
    for prefix, loader in list(CheckpointLoader._schemes.items()):
        CheckpointLoader.register_scheme(prefix, restricted_loader(loader), force=True)


for _loader in (load_from_local, load_from_ceph, load_from_openmmlab):
    setattr(_loader, _INSTALLED_MARK, True)

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
- other schemes (``pavi://``, ones registered later) run inside the allow-list, with refusals
  translated to :class:`UnsafeCheckpointError`.

Downloads are cached under ``$TORCH_HOME/hub/checkpoints`` by file name, as torch.hub does; a name that
carries a hash (``name-<8+ hex digits>.pth``, as OpenMMLab and torchvision publish them) is checked
against the file's SHA-256 on every load, so a file swapped in the cache is refused, not unpickled.
"""
import functools
import hashlib
import io
import os
import os.path as osp
import pickle
import re
import sys
from urllib.parse import urlparse

import mmengine.runner.checkpoint as mmengine_checkpoint
import torch
from mmengine.fileio import get_file_backend
from mmengine.runner.checkpoint import CheckpointLoader

from .allow_list import checkpoint_globals_allowed, refused_globals, weights_only_reason
from .errors import UnsafeCheckpointError
from .scan import CheckpointStructureError, scan_checkpoint

# torch.hub's naming convention: the first 8 or more hex digits of the file's SHA-256 before the suffix.
HASH_IN_NAME = re.compile(r'-([a-f0-9]{8,})\.[^.]+$')
# What torch.load raises, besides UnpicklingError, for a file it cannot read or a structure it rejects.
_TORCH_READ_ERRORS = (RuntimeError, TypeError, ValueError, AssertionError, EOFError, KeyError,
                      AttributeError, IndexError, OverflowError, UnicodeDecodeError)
# A loader installed by mmext carries this attribute, so that installing twice changes nothing.
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
        scan_checkpoint(file)
    except CheckpointStructureError as error:
        raise UnsafeCheckpointError(name, f'{error}. mmext refuses it before unpickling anything.') from None
    try:
        with checkpoint_globals_allowed():
            return torch.load(file, map_location=map_location, weights_only=True)
    except UnsafeCheckpointError:
        raise
    except pickle.UnpicklingError as error:
        message = str(error)
        if 'Weights only load failed' not in message:
            raise UnsafeCheckpointError(name, f'torch could not read it ({message})') from error
        with checkpoint_globals_allowed():
            refused = refused_globals(file, message)
        raise UnsafeCheckpointError.for_globals(name, refused, weights_only_reason(message)) from error
    except _TORCH_READ_ERRORS as error:
        raise UnsafeCheckpointError(name, f'torch could not read it ({type(error).__name__}: {error})') \
            from error


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


def load_url(url, model_dir=None, map_location=None, progress=True, check_hash=False, file_name=None):
    """torch.hub's ``load_state_dict_from_url``, loading with :func:`load_checkpoint_file`.

    Signature of mmengine's ``load_url``. The hash in the file name is checked on download and on every
    load from the cache, whatever ``check_hash`` says.
    """
    model_dir = model_dir or osp.join(torch.hub.get_dir(), 'checkpoints')
    os.makedirs(model_dir, exist_ok=True)
    cached = osp.join(model_dir, file_name or osp.basename(urlparse(url).path))
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


def _within_allow_list(loader):
    """Wraps another scheme's ``loader(filename, map_location, ...)``: its ``torch.load`` runs with the
    allow-list, and torch's refusals become :class:`UnsafeCheckpointError`."""

    @functools.wraps(loader)  # CheckpointLoader logs the loader's ``__name__``
    def load(filename, *args, **kwargs):
        try:
            with checkpoint_globals_allowed():
                return loader(filename, *args, **kwargs)
        except UnsafeCheckpointError:
            raise
        except pickle.UnpicklingError as error:
            message = str(error)
            if 'Weights only load failed' not in message:
                raise
            raise UnsafeCheckpointError.for_globals(filename, refused_globals(None, message),
                                                    weights_only_reason(message)) from error

    return load


def install_checkpoint_loaders():
    """Route every ``CheckpointLoader`` scheme through mmext's restricted loading (module docstring).

    Idempotent: loaders installed before are kept, so calling it again only covers schemes that were
    registered since.
    """
    replaced = {mmengine_checkpoint.load_from_local: load_from_local,
                mmengine_checkpoint.load_from_ceph: load_from_ceph,
                mmengine_checkpoint.load_from_openmmlab: load_from_openmmlab}
    mmengine_checkpoint.load_url = load_url
    for prefix, loader in list(CheckpointLoader._schemes.items()):
        if getattr(loader, _INSTALLED_MARK, False):
            continue
        if loader not in replaced:
            replaced[loader] = _within_allow_list(loader)
            setattr(replaced[loader], _INSTALLED_MARK, True)
        CheckpointLoader.register_scheme(prefix, replaced[loader], force=True)


for _loader in (load_from_local, load_from_ceph, load_from_openmmlab):
    setattr(_loader, _INSTALLED_MARK, True)

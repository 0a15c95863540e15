"""Downloads into a cache, once, checked: the one place the package reaches the network.

* The cache is ``$RES2NET_DET_CACHE``, else ``res2net_det/`` under torch.hub's directory
  (``$TORCH_HOME/hub``). A file placed there by hand under the path an error names is used as
  if it had been downloaded.
* A download goes to a temporary file in the cache folder and is renamed into place only after
  it arrived whole and passed its checks: a failed, cut or killed transfer leaves no file that a
  later run could mistake for the weights.
* Processes sharing the cache take turns through a file lock (``filelock``, which torch itself
  depends on): the first downloads, the others wait and then find the file, so no two write the
  same path and a second use makes no request.
* Checksums: a file name in torch.hub's ``name-<hex>.ext`` form is verified as torch.hub's
  ``check_hash`` does (the hex digits are a prefix of the file's sha256). A file without one gets
  the sha256 of its first download recorded beside it (``<file>.sha256``), and every later use is
  compared with that record. A file whose digest disagrees is refused, with an error naming the
  URL, both digests and the cache path, and nothing is cached; ``accept_checksum_mismatch`` keeps
  it anyway (logged as a warning) by recording its digest as the one to trust.
"""
from __future__ import annotations

import hashlib
import logging
import os
import sys
import urllib.parse
import urllib.request
from typing import Callable, Optional, Sequence

import torch.hub
from filelock import FileLock
from tqdm import tqdm

from .io import atomic_path, atomic_write

logger = logging.getLogger(__name__)

__all__ = ["CACHE_ENV", "MIRROR_ENV", "ChecksumError", "DownloadError", "cache_dir", "cached_file",
           "hash_prefix_of", "mirrored", "sha256_of"]

CACHE_ENV = "RES2NET_DET_CACHE"
MIRROR_ENV = "RES2NET_DET_WEIGHTS_MIRROR"
_CHUNK = 1 << 20
_TIMEOUT_S = 60.0


class DownloadError(OSError):
    """No source could deliver the file; the message names every URL tried and the cache path."""


class ChecksumError(DownloadError):
    """A file whose sha256 disagrees with what is expected of it; nothing was cached."""


def cache_dir() -> str:
    """``$RES2NET_DET_CACHE``, else ``<torch.hub.get_dir()>/res2net_det``."""
    return os.path.expanduser(os.environ.get(CACHE_ENV) or os.path.join(torch.hub.get_dir(), "res2net_det"))


def mirrored(url: str, mirror: Optional[str] = None) -> str:
    """``url`` with its scheme and host replaced by ``mirror`` (default ``$RES2NET_DET_WEIGHTS_MIRROR``),
    its path kept, as ``HF_ENDPOINT`` does for the Hugging Face hub:
    ``https://host/res2net/x.pth`` under ``http://10.0.0.5/cache`` is ``http://10.0.0.5/cache/res2net/x.pth``."""
    mirror = os.environ.get(MIRROR_ENV, "") if mirror is None else mirror
    if not mirror:
        return url
    return mirror.rstrip("/") + "/" + urllib.parse.urlsplit(url).path.lstrip("/")


def hash_prefix_of(filename: str) -> Optional[str]:
    """The sha256 prefix a torch.hub-style file name carries (``resnet50-0676ba61.pth`` ->
    ``0676ba61``), found with torch.hub's own pattern; None when it carries none."""
    found = torch.hub.HASH_REGEX.search(os.path.basename(filename))
    return found.group(1) if found and found.group(1) else None


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _record_path(path: str) -> str:
    return path + ".sha256"


def _read_record(path: str) -> Optional[str]:
    try:
        with open(_record_path(path), encoding="utf-8") as f:
            return f.read().split()[0]
    except (OSError, IndexError):
        return None


def _write_record(path: str, digest: str) -> None:
    with atomic_write(_record_path(path), suffix=".partial") as f:
        f.write(f"{digest}  {os.path.basename(path)}\n")


def _record_unless_named(path: str, digest: str) -> None:
    """Records ``digest`` beside ``path`` unless the file name's hash prefix already says it (a file
    without one, or one accepted despite its name), so that later uses are held to it."""
    if not digest.startswith(hash_prefix_of(path) or "-"):
        _write_record(path, digest)


def _check_digest(digest: str, path: str, where: str, accept_mismatch: bool, downloaded: bool) -> None:
    """Raises :class:`ChecksumError` unless ``digest`` (of the file that is, or would be, ``path``)
    is what the record beside ``path`` or its name's hash prefix expects; ``accept_mismatch``
    lets it pass (the caller records it as trusted)."""
    recorded = _read_record(path)
    expected = recorded or hash_prefix_of(path)
    if expected is None or digest.startswith(expected):
        return
    what = "the sha256 recorded at its first download" if recorded else "the sha256 prefix in its file name"
    if accept_mismatch:
        logger.warning(
            "ACCEPTING A FILE WHOSE CHECKSUM DISAGREES, as asked: %s has sha256 %s, but %s is %s. Its "
            "digest is now recorded as the one to trust (%s).", where, digest, what, expected, _record_path(path))
        return
    fate = f"Nothing was cached at {path}" if downloaded else "Delete it, or replace it with the right file"
    raise ChecksumError(
        f"checksum mismatch for {where}: expected {what} {expected}, got sha256 {digest}. {fate}. "
        "If you trust this file, accept it explicitly (MODEL.WEIGHTS_ACCEPT_CHECKSUM_MISMATCH "
        "True, or tools/download_weights.py NAME --accept-checksum-mismatch)"
    )


def _download(url: str, dst: str, progress: bool) -> str:
    """Streams ``url`` into the new file ``dst`` and returns its sha256.

    Written here rather than calling ``torch.hub.download_url_to_file``, which neither takes a
    timeout nor compares what arrived with ``Content-Length``: a connection cut halfway leaves it a
    short file that it renames into place as if whole.
    """
    request = urllib.request.Request(url, headers={"User-Agent": "res2net-det"})
    digest = hashlib.sha256()
    received = 0
    with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response, open(dst, "xb") as f:
        length = response.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else None
        with tqdm(total=expected, disable=not progress, unit="B", unit_scale=True, unit_divisor=1024,
                  desc=os.path.basename(dst).split(".partial")[0]) as bar:
            for block in iter(lambda: response.read(_CHUNK), b""):
                f.write(block)
                digest.update(block)
                received += len(block)
                bar.update(len(block))
        f.flush()
        os.fsync(f.fileno())
    if expected is not None and received != expected:
        raise DownloadError(f"the transfer from {url} was cut: {received} of {expected} bytes arrived")
    if received == 0:
        raise DownloadError(f"{url} sent an empty file")
    return digest.hexdigest()


def cached_file(
    urls: Sequence[str],
    path: str,
    *,
    accept_checksum_mismatch: bool = False,
    validate: Optional[Callable[[str], None]] = None,
    progress: Optional[bool] = None,
) -> str:
    """The local file ``path`` (inside the cache), downloaded from the first of ``urls`` that
    delivers it when it isn't there yet; returns ``path``.

    Args:
        urls: sources of one and the same file, tried in order.
        path: where the file lives in the cache; its name's hash prefix, if any, is checked.
        accept_checksum_mismatch: keep a file whose sha256 disagrees (logged loudly), recording
            its digest as the one later uses are compared with.
        validate: called on the downloaded temporary file before it is renamed into place (e.g. it
            must read as a checkpoint); an exception refuses the file and nothing is cached.
        progress: a progress bar on stderr (default: when stderr is a terminal).

    Raises :class:`ChecksumError` for a file that fails its checksum, :class:`DownloadError` when no
    URL delivers it (naming every URL with its error, the mirror variable and ``path``).
    """
    progress = sys.stderr.isatty() if progress is None else progress
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with FileLock(path + ".lock"):
        if os.path.isfile(path):
            digest = sha256_of(path)
            _check_digest(digest, path, f"the cached file {path}", accept_checksum_mismatch, downloaded=False)
            if _read_record(path) is None:
                _record_unless_named(path, digest)  # placed by hand, or accepted: its digest from now on
            logger.info("from the cache: %s (sha256 %s)", path, digest)
            return path
        failures, mismatches = [], []
        for url in urls:
            try:
                # renamed into place only when it arrived whole and passed every check; else removed
                with atomic_path(path, suffix=".partial") as tmp:
                    logger.info("downloading %s to %s", url, path)
                    digest = _download(url, tmp, progress)
                    _check_digest(digest, path, url, accept_checksum_mismatch, downloaded=True)
                    if validate is not None:
                        validate(tmp)
                    _record_unless_named(path, digest)
                logger.info("downloaded %s (sha256 %s) to %s", url, digest, path)
                return path
            except ChecksumError as e:  # another host may still serve the right file
                mismatches.append(str(e))
            except Exception as e:  # noqa: BLE001 - any failure of one source: try the next
                failures.append(f"{url}: {e}")
    if mismatches:
        raise ChecksumError("\n".join(mismatches + [f"(also tried: {f})" for f in failures]))
    mirror = os.environ.get(MIRROR_ENV, "")
    raise DownloadError(
        "could not download " + os.path.basename(path) + ". Tried:\n  " + "\n  ".join(failures)
        + f"\n{MIRROR_ENV} is " + (f"{mirror!r}" if mirror else "not set")
        + " (set it to the base URL of a server holding the same files under the same paths). "
        f"Or place the file by hand at {path} and it will be used."
    )

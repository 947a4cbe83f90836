"""The one download path of the course: cached, checksummed, atomic, resumable, with mirrors.

Files go to the cache folder (:func:`cache_dir`): the environment variable
``TUTORIAL_DATA_DIR`` if set, else ``data/cache/`` in the repository (git-ignored).

:func:`fetch` returns the path of a verified file. If the file is already in the cache it is
verified and returned. Otherwise each mirror is tried in order, each up to ``retries`` times:
the bytes go to ``<name>.part`` next to the target; an interrupted transfer resumes with an
HTTP ``Range`` request; a complete transfer is checked against the published checksum and only
then renamed onto the target with ``os.replace`` (atomic on one file system). A transfer that
fails its checksum is deleted and the next mirror is tried. When every mirror fails, or the
process is interrupted, the bytes received so far stay in ``<name>.part`` (a name that is never
read as the dataset) and the next call resumes from them; the final checksum decides whether
the assembled file is used. :class:`DownloadError` says which URLs were tried and why, the
expected checksum, and where to put a file downloaded by hand. Without any checksum to check
the assembled file against, partial bytes are not kept.

Where a dataset publishes no checksum, the sha256 of the first complete download is recorded
in ``<name>.sha256`` beside it (with a ``logging`` warning saying so) and every later use is
verified against that record.

Limitations: two processes downloading the same file at the same moment share one ``.part``
file; download once before starting data-loader workers.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ChecksumError",
    "DownloadError",
    "Resource",
    "cache_dir",
    "fetch",
    "file_digest",
    "verify",
]

logger = logging.getLogger(__name__)

ENV_VAR = "TUTORIAL_DATA_DIR"
CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """No mirror delivered a complete file with the expected checksum."""


class ChecksumError(DownloadError):
    """A file's checksum differs from the expected one."""


@dataclass(frozen=True)
class Resource:
    """A file to download.

    Attributes:
        filename: name in the cache folder (may contain sub-folders, e.g. ``"mnist/x.gz"``).
        urls: mirrors, tried in order.
        checksum: ``"sha256:<hex>"`` or ``"md5:<hex>"`` as published, or None where the
            publisher gives none (then the first complete download is recorded).
        homepage: where a person finds the file by hand (shown in error messages).
    """

    filename: str
    urls: tuple[str, ...]
    checksum: str | None = None
    homepage: str | None = None


def cache_dir(create: bool = True) -> Path:
    """The download cache: ``$TUTORIAL_DATA_DIR`` or ``<repository>/data/cache``."""
    env = os.environ.get(ENV_VAR)
    path = (
        Path(env).expanduser() if env else Path(__file__).resolve().parents[1] / "data" / "cache"
    )
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def _split_checksum(checksum: str) -> tuple[str, str]:
    algorithm, _, digest = checksum.partition(":")
    if algorithm not in ("sha256", "md5") or not digest:
        raise ValueError(f"expected checksum 'sha256:<hex>' or 'md5:<hex>', got {checksum!r}")
    return algorithm, digest.lower()


def file_digest(path: Path | str, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path: Path | str, checksum: str) -> None:
    """Raise :class:`ChecksumError` unless ``path`` has ``checksum`` (``"sha256:<hex>"``)."""
    algorithm, expected = _split_checksum(checksum)
    actual = file_digest(path, algorithm)
    if actual != expected:
        raise ChecksumError(
            f"{path} has {algorithm} {actual}, expected {expected}; the file is corrupt, "
            "incomplete or a different version"
        )


def _record_path(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def _expected(resource: Resource, target: Path) -> str | None:
    """The published checksum, else the one recorded at the first download, else None."""
    if resource.checksum:
        return resource.checksum
    record = _record_path(target)
    if record.exists():
        return "sha256:" + record.read_text().split()[0]
    return None


def _manual_hint(resource: Resource, target: Path, expected: str | None) -> str:
    where = resource.homepage or resource.urls[0]
    check = expected or "none published (the first file placed there is recorded)"
    return (
        f"To install it by hand, download {resource.urls[0]} (see {where}), check its "
        f"checksum ({check}) and put it at {target} "
        f"(set {ENV_VAR} to use another cache folder)."
    )


def _transfer(url: str, part: Path, timeout: float) -> None:
    """Append the missing bytes of ``url`` to ``part``; raise OSError if the body is short."""
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "tutorial-lib"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        status = response.status
        if offset and status == 206:
            mode, start = "ab", offset
            logger.info("resuming %s at byte %d", url, offset)
        else:
            mode, start = "wb", 0
        length = response.headers.get("Content-Length")
        expected_total = start + int(length) if length is not None else None
        received = start
        with open(part, mode) as handle:
            while True:
                try:
                    block = response.read(CHUNK)
                except http.client.IncompleteRead as error:
                    handle.write(error.partial)
                    received += len(error.partial)
                    break
                if not block:
                    break
                handle.write(block)
                received += len(block)
    if expected_total is not None and received < expected_total:
        raise OSError(f"connection closed after {received} of {expected_total} bytes")


def fetch(
    resource: Resource,
    cache: Path | str | None = None,
    retries: int = 3,
    timeout: float = 30.0,
    backoff: float = 1.0,
) -> Path:
    """Return the path of a verified copy of ``resource``, downloading it if needed.

    Args:
        resource: what to fetch.
        cache: folder to use instead of :func:`cache_dir`.
        retries: attempts per mirror (interrupted transfers resume where they stopped).
        timeout: seconds of socket inactivity before an attempt fails.
        backoff: seconds to wait after a failed attempt, multiplied by the attempt number.

    Raises:
        ChecksumError: a file already at the target does not match (it is renamed to
            ``<name>.corrupt`` so that it is never used).
        DownloadError: no mirror delivered a verified file; the message says what to do.
    """
    if retries < 1:
        raise ValueError(f"expected retries >= 1, got {retries}")
    root = Path(cache) if cache is not None else cache_dir()
    target = root / resource.filename
    target.parent.mkdir(parents=True, exist_ok=True)
    expected = _expected(resource, target)

    if target.exists():
        if expected is None:
            _record_first(target)
            return target
        try:
            verify(target, expected)
        except ChecksumError as error:
            bad = target.with_name(target.name + ".corrupt")
            os.replace(target, bad)
            raise ChecksumError(
                f"{error}. Moved it to {bad}. {_manual_hint(resource, target, expected)}"
            ) from None
        return target

    part = target.with_name(target.name + ".part")
    if part.exists() and part.stat().st_size:
        logger.info("found %d bytes of an earlier attempt in %s", part.stat().st_size, part)
    failures: list[str] = []
    done = False
    try:
        for url in resource.urls:
            if expected is None and part.exists():
                part.unlink()  # nothing would check bytes from two sources against each other
            for attempt in range(1, retries + 1):
                try:
                    _transfer(url, part, timeout)
                except (OSError, http.client.HTTPException) as error:
                    reason = _describe(error)
                    logger.warning("download of %s failed (%s), attempt %d", url, reason, attempt)
                    if isinstance(error, urllib.error.HTTPError) and error.code in (403, 404, 410):
                        failures.append(f"{url}: {reason}")
                        break
                    if attempt == retries:
                        failures.append(f"{url}: {reason} after {retries} attempts")
                    elif backoff > 0:
                        time.sleep(backoff * attempt)
                    continue
                if expected is not None:
                    try:
                        verify(part, expected)
                    except ChecksumError:
                        algorithm, _ = _split_checksum(expected)
                        actual = file_digest(part, algorithm)
                        failures.append(f"{url}: {algorithm} {actual} does not match")
                        part.unlink()
                        break
                os.replace(part, target)
                done = True
                if expected is None:
                    _record_first(target)
                logger.info("downloaded %s to %s", url, target)
                return target
    finally:
        if not done and part.exists() and (expected is None or part.stat().st_size == 0):
            part.unlink()

    kept = ""
    if part.exists():
        kept = (
            f"The {part.stat().st_size} bytes received so far are kept in {part}; "
            "the next call resumes from them.\n"
        )
    tried = "\n  ".join(failures)
    raise DownloadError(
        f"Could not download {resource.filename}. Tried, in order:\n  {tried}\n"
        f"Expected checksum: {expected or 'none published'}.\n"
        + kept
        + _manual_hint(resource, target, expected)
    )


def _record_first(target: Path) -> None:
    digest = file_digest(target)
    _record_path(target).write_text(f"{digest}  {target.name}\n")
    logger.warning(
        "%s has no published checksum; recorded sha256 %s of this copy in %s and will verify "
        "against it from now on",
        target.name,
        digest,
        _record_path(target),
    )


def _describe(error: BaseException) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        return f"unreachable ({error.reason})"
    return f"{type(error).__name__}: {error}"


def fetch_all(resources: Sequence[Resource], **kwargs: object) -> list[Path]:
    """:func:`fetch` each resource in turn; returns their paths."""
    return [fetch(resource, **kwargs) for resource in resources]  # type: ignore[arg-type]

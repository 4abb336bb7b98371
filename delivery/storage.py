"""Release file storage: content-addressed objects on a filesystem or any S3-compatible store.

`DATAFAIR_STORAGE_URL` picks the backend (API.md, Delivery and use, "Releases and storage"):
`file:///abs/path` (the embedded default) or `s3://bucket/prefix`. S3 settings come from the
environment as boto3 reads it (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
`AWS_REGION`), or from `s3_options`, which override it (tests use that to leave os.environ alone).

Objects are named by the sha256 hex of their bytes. Uploads are streamed: the body is read in
chunks, hashed while it is written, and never held whole in memory (an S3 part, 8 MiB, is the most
kept at once). Until the digest is known the bytes sit at a temporary name, and a failed upload
(too large, digest mismatch, error) leaves nothing behind. A reader never sees a half-written
object: the filesystem renames a complete temp file into place; on S3 a multipart upload only
becomes an object when completed, and is then copied server-side to its content address.

Filesystem layout: `<root>/objects/<aa>/<bb>/<sha256>`, temp files in `<root>/tmp/` (the same tree,
so the rename is atomic). S3 layout: `<prefix>/objects/<sha256>`, temp objects in `<prefix>/tmp/`.
A missing object makes `size` and `open` raise FileNotFoundError on both backends.

Only a process killed mid-upload leaves anything behind: a file in `<root>/tmp/`, or on S3 an
incomplete multipart upload or an object under `<prefix>/tmp/`. Both are safe to sweep at any age
above the longest upload (on S3, a bucket lifecycle rule that aborts incomplete multipart uploads and
expires `<prefix>/tmp/` after a day does it).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol
from urllib.parse import unquote, urlsplit

CHUNK_BYTES = 1 << 20
# S3 refuses parts under 5 MiB except the last; 8 MiB also bounds what one upload keeps in memory.
PART_BYTES = 8 << 20
# A revocation must take effect within a minute (API.md, Downloads), whatever the caller asks for.
PRESIGN_MAX_SECONDS = 60
DIR_MODE = 0o750
FILE_MODE = 0o640

_SHA256 = re.compile(r"[0-9a-f]{64}")
# Quoted into Content-Disposition by S3: a quote, backslash or control character could break out of it.
_SAFE_FILENAME = re.compile(r"[\x20-\x7e]{1,255}")
_S3_OPTIONS = ("endpoint_url", "aws_access_key_id", "aws_secret_access_key", "aws_session_token", "region_name")


class UploadTooLarge(Exception):
    """The body exceeded the upload limit; nothing was stored (answer 413)."""


class DigestMismatch(Exception):
    """The body's sha256 is not the one announced; nothing was stored (answer 422)."""


@dataclass(frozen=True)
class Stored:
    sha256: str
    bytes: int


class Storage(Protocol):
    kind: str

    def put_stream(
        self, read: Callable[[int], bytes], *, limit: int, expected_sha256: str | None = None
    ) -> Stored: ...

    def exists(self, sha256: str) -> bool: ...

    def size(self, sha256: str) -> int: ...

    def path(self, sha256: str) -> str | None: ...

    def open(self, sha256: str) -> BinaryIO: ...

    def presigned_url(self, sha256: str, *, filename: str, expires_in: int) -> str | None: ...

    def delete(self, sha256: str) -> None: ...


def valid_sha256(value: str) -> bool:
    """64 lowercase hex characters (fullmatch: a trailing newline is refused too)."""
    return isinstance(value, str) and _SHA256.fullmatch(value) is not None


def _checked(sha256: str) -> str:
    if not valid_sha256(sha256):
        raise ValueError(f"not a sha256 (64 lowercase hex characters): {sha256!r}")
    return sha256


def _expected(expected_sha256: str | None) -> str | None:
    """The announced digest, lowercased; a malformed one can never match, so it fails before any read."""
    if expected_sha256 is None:
        return None
    expected = expected_sha256.strip().lower()
    if not valid_sha256(expected):
        raise DigestMismatch(f"the announced sha256 is not 64 hex characters: {expected_sha256!r}")
    return expected


def _read_chunk(read: Callable[[int], bytes], total: int, limit: int) -> bytes:
    """The next chunk (b"" at the end); UploadTooLarge as soon as more than `limit` bytes arrived.

    At most limit+1 bytes are asked for in all, so an oversized body is not read on to its end."""
    chunk = read(min(CHUNK_BYTES, limit + 1 - total))
    if total + len(chunk) > limit:
        raise UploadTooLarge(f"the upload exceeds {limit} bytes")
    return chunk


def _safe_filename(filename: str) -> str:
    if not _SAFE_FILENAME.fullmatch(filename) or '"' in filename or "\\" in filename:
        raise ValueError(f"filename unfit for Content-Disposition: {filename!r}")
    return filename


class FileStorage:
    """Objects under a local directory (the embedded default)."""

    kind = "file"

    def __init__(self, root: str | os.PathLike[str]) -> None:
        root = Path(root)
        if not root.is_absolute():
            raise ValueError(f"file storage needs an absolute path, got {str(root)!r}")
        self.root = root
        self.objects = root / "objects"
        self.tmp = root / "tmp"

    def _path(self, sha256: str) -> Path:
        sha256 = _checked(sha256)
        return self.objects / sha256[:2] / sha256[2:4] / sha256

    def put_stream(
        self, read: Callable[[int], bytes], *, limit: int, expected_sha256: str | None = None
    ) -> Stored:
        expected = _expected(expected_sha256)
        self.tmp.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=self.tmp, prefix="upload-")
        try:
            digest = hashlib.sha256()
            total = 0
            with os.fdopen(fd, "wb") as out:
                while chunk := _read_chunk(read, total, limit):
                    total += len(chunk)
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                # Durable before it is renamed into place: a crash must not leave a named, truncated object.
                os.fsync(out.fileno())
            sha256 = digest.hexdigest()
            if expected is not None and sha256 != expected:
                raise DigestMismatch(f"sha256 of the body is {sha256}, {expected} was announced")
            final = self._path(sha256)
            if final.exists():
                os.unlink(tmp_name)
            else:
                os.chmod(tmp_name, FILE_MODE)
                final.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
                # A concurrent upload of the same bytes may win the race: replacing it with equal bytes is harmless.
                os.replace(tmp_name, final)
            return Stored(sha256=sha256, bytes=total)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise

    def exists(self, sha256: str) -> bool:
        return self._path(sha256).is_file()

    def size(self, sha256: str) -> int:
        return self._path(sha256).stat().st_size

    def path(self, sha256: str) -> str | None:
        return str(self._path(sha256))

    def open(self, sha256: str) -> BinaryIO:
        return open(self._path(sha256), "rb")

    def presigned_url(self, sha256: str, *, filename: str, expires_in: int) -> str | None:
        _checked(sha256)
        return None

    def delete(self, sha256: str) -> None:
        self._path(sha256).unlink(missing_ok=True)


class S3Storage:
    """Objects in an S3 bucket under a prefix (AWS or any S3-compatible store)."""

    kind = "s3"

    def __init__(self, bucket: str, prefix: str, s3_options: Mapping[str, Any] | None = None) -> None:
        import boto3
        import botocore.config

        options = dict(s3_options or {})
        unknown = sorted(set(options) - set(_S3_OPTIONS))
        if unknown:
            raise ValueError(f"unknown s3_options {unknown}; allowed: {list(_S3_OPTIONS)}")
        self.bucket = bucket
        self.prefix = prefix
        config = botocore.config.Config(signature_version="s3v4", retries={"max_attempts": 3})
        # A session of our own: boto3's default session is shared and not safe to build clients from concurrently.
        self.client = boto3.session.Session().client("s3", config=config, **options)

    def _key(self, sha256: str) -> str:
        return self._prefixed(f"objects/{_checked(sha256)}")

    def _prefixed(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def _missing(self, error: Exception) -> bool:
        from botocore.exceptions import ClientError

        return isinstance(error, ClientError) and error.response.get("Error", {}).get("Code") in (
            "404", "NoSuchKey", "NotFound")

    def put_stream(
        self, read: Callable[[int], bytes], *, limit: int, expected_sha256: str | None = None
    ) -> Stored:
        expected = _expected(expected_sha256)
        digest = hashlib.sha256()
        total = 0
        part = bytearray()
        end = False
        while len(part) < PART_BYTES:
            chunk = _read_chunk(read, total, limit)
            if not chunk:
                end = True
                break
            total += len(chunk)
            digest.update(chunk)
            part += chunk
        if end:
            # The whole body fits in one part: checked before it is written, and a PUT appears whole or not at all.
            sha256 = self._verified(digest, expected)
            if not self.exists(sha256):
                self.client.put_object(Bucket=self.bucket, Key=self._key(sha256), Body=bytes(part),
                                       ContentType="application/octet-stream")
            return Stored(sha256=sha256, bytes=total)
        return self._put_multipart(read, limit, expected, digest, total, part)

    def _put_multipart(
        self, read: Callable[[int], bytes], limit: int, expected: str | None,
        digest: Any, total: int, part: bytearray,
    ) -> Stored:
        tmp_key = self._prefixed(f"tmp/{uuid.uuid4().hex}")
        upload_id = self.client.create_multipart_upload(
            Bucket=self.bucket, Key=tmp_key, ContentType="application/octet-stream")["UploadId"]
        completed = False
        try:
            parts: list[dict[str, Any]] = []
            end = False
            while part:
                if len(part) >= PART_BYTES or end:
                    answer = self.client.upload_part(Bucket=self.bucket, Key=tmp_key, UploadId=upload_id,
                                                     PartNumber=len(parts) + 1, Body=bytes(part))
                    parts.append({"PartNumber": len(parts) + 1, "ETag": answer["ETag"]})
                    part = bytearray()
                if end:
                    break
                while len(part) < PART_BYTES:
                    chunk = _read_chunk(read, total, limit)
                    if not chunk:
                        end = True
                        break
                    total += len(chunk)
                    digest.update(chunk)
                    part += chunk
            # Checked before completing: an aborted upload never becomes an object anyone could list or read.
            sha256 = self._verified(digest, expected)
            self.client.complete_multipart_upload(Bucket=self.bucket, Key=tmp_key, UploadId=upload_id,
                                                  MultipartUpload={"Parts": parts})
            completed = True
            if not self.exists(sha256):
                # The managed copy goes multipart itself above 5 GB, which a single CopyObject refuses.
                self.client.copy({"Bucket": self.bucket, "Key": tmp_key}, self.bucket, self._key(sha256),
                                 ExtraArgs={"ContentType": "application/octet-stream"})
            return Stored(sha256=sha256, bytes=total)
        except BaseException:
            if not completed:
                with contextlib.suppress(Exception):
                    self.client.abort_multipart_upload(Bucket=self.bucket, Key=tmp_key, UploadId=upload_id)
            raise
        finally:
            if completed:
                with contextlib.suppress(Exception):
                    self.client.delete_object(Bucket=self.bucket, Key=tmp_key)

    @staticmethod
    def _verified(digest: Any, expected: str | None) -> str:
        sha256 = digest.hexdigest()
        if expected is not None and sha256 != expected:
            raise DigestMismatch(f"sha256 of the body is {sha256}, {expected} was announced")
        return sha256

    def exists(self, sha256: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(sha256))
        except Exception as error:
            if self._missing(error):
                return False
            raise
        return True

    def size(self, sha256: str) -> int:
        key = self._key(sha256)
        try:
            return int(self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"])
        except Exception as error:
            if self._missing(error):
                raise FileNotFoundError(f"s3://{self.bucket}/{key}") from error
            raise

    def path(self, sha256: str) -> str | None:
        _checked(sha256)
        return None

    def open(self, sha256: str) -> BinaryIO:
        key = self._key(sha256)
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        except Exception as error:
            if self._missing(error):
                raise FileNotFoundError(f"s3://{self.bucket}/{key}") from error
            raise

    def presigned_url(self, sha256: str, *, filename: str, expires_in: int) -> str | None:
        params = {
            "Bucket": self.bucket,
            "Key": self._key(sha256),
            "ResponseContentDisposition": f'attachment; filename="{_safe_filename(filename)}"',
            "ResponseContentType": "application/octet-stream",
        }
        seconds = max(1, min(int(expires_in), PRESIGN_MAX_SECONDS))
        return self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=seconds)

    def delete(self, sha256: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(sha256))


def open_storage(url: str, *, s3_options: Mapping[str, Any] | None = None) -> Storage:
    """The storage named by `url`: `file:///abs/path` or `s3://bucket/prefix`.

    `s3_options` (boto3 client arguments: endpoint_url, aws_access_key_id, aws_secret_access_key,
    aws_session_token, region_name) override the environment for S3."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise ValueError(f"file storage URL must be file:///absolute/path, got {url!r}")
        if parts.query or parts.fragment:
            raise ValueError(f"file storage URL takes no query or fragment: {url!r}")
        return FileStorage(unquote(parts.path))
    if parts.scheme == "s3":
        if not parts.netloc or parts.query or parts.fragment:
            raise ValueError(f"S3 storage URL must be s3://bucket/prefix, got {url!r}")
        prefix = unquote(parts.path).strip("/")
        if any(segment in ("", ".", "..") for segment in prefix.split("/")) and prefix:
            raise ValueError(f"S3 storage prefix has an empty, '.' or '..' segment: {url!r}")
        return S3Storage(parts.netloc, prefix, s3_options)
    raise ValueError(f"storage URL must be file:///absolute/path or s3://bucket/prefix, got {url!r}")

"""OSS transfers with STS credentials (``oss2`` is imported only when used)."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Callable, TypeVar

from . import config
from ._models import RequestInfoException, StsToken
from ._util import MiB, RetryPolicy, atomic_target, log

_T = TypeVar("_T")


class OssTransfer:
    """Uploads and downloads objects of the cloud's bucket.

    Parameters
    ----------
    credentials
        Returns current STS credentials (called once per transfer).
    retry
        Retries apply to each OSS request on its own (a failed part is sent
        again, not the whole file) on connection errors and 5xx answers.
    timeout
        Seconds for each OSS request.
    """

    def __init__(
        self, credentials: Callable[[], StsToken], retry: RetryPolicy, timeout: float
    ) -> None:
        self._credentials = credentials
        self._retry = retry
        self._timeout = timeout

    def _bucket(self, endpoint: str | None, bucket_name: str | None) -> Any:
        import oss2

        sts = self._credentials()
        auth = oss2.StsAuth(sts.access_key_id, sts.access_key_secret, sts.security_token)
        return oss2.Bucket(
            auth,
            endpoint or config.ali_sts_endpoint(),
            bucket_name or config.ali_sts_bucket_name(),
            connect_timeout=self._timeout,
        )

    def _call(self, what: str, call: Callable[[], _T]) -> _T:
        """Run one OSS request with bounded retries."""
        import oss2

        attempt = 0
        while True:
            try:
                return call()
            except oss2.exceptions.RequestError as err:
                if attempt >= self._retry.max_retries:
                    raise RequestInfoException(
                        f"OSS {what} failed: cannot reach the storage"
                    ) from err
                reason = "connection error"
            except oss2.exceptions.ServerError as err:
                if err.status < 500 or attempt >= self._retry.max_retries:
                    raise RequestInfoException(
                        f"OSS {what} failed: HTTP {err.status} {err.code}",
                        http_status=err.status,
                    ) from err
                reason = f"HTTP {err.status}"
            self._retry.pause(attempt, f"OSS {what}", reason)
            attempt += 1

    def upload_file(
        self,
        local_file: str | os.PathLike[str],
        oss_key: str,
        *,
        endpoint: str | None = None,
        bucket_name: str | None = None,
        multipart_threshold: int = 10 * MiB,
        part_size: int = 8 * MiB,
    ) -> None:
        """Upload ``local_file`` to ``oss_key``; multipart from ``multipart_threshold`` bytes."""
        bucket = self._bucket(endpoint, bucket_name)
        path = os.fspath(local_file)
        size = os.path.getsize(path)
        if size < multipart_threshold:
            self._call("put object", functools.partial(bucket.put_object_from_file, oss_key, path))
        else:
            self._multipart_upload(bucket, oss_key, path, max(part_size, 1))
        log.debug("uploaded %s (%d bytes) to %s", path, size, oss_key)

    def _multipart_upload(self, bucket: Any, key: str, path: str, part_size: int) -> None:
        import oss2

        init = self._call("init multipart", functools.partial(bucket.init_multipart_upload, key))
        upload_id = init.upload_id
        parts: list[Any] = []
        try:
            with open(path, "rb") as src:
                number = 1
                while True:
                    chunk = src.read(part_size)
                    if not chunk and number > 1:
                        break
                    call = functools.partial(bucket.upload_part, key, upload_id, number, chunk)
                    result = self._call(f"upload part {number}", call)
                    parts.append(
                        oss2.models.PartInfo(
                            number, result.etag, size=len(chunk), part_crc=result.crc
                        )
                    )
                    if len(chunk) < part_size:
                        break
                    number += 1
            done = functools.partial(bucket.complete_multipart_upload, key, upload_id, parts)
            self._call("complete multipart", done)
        except BaseException:
            try:
                bucket.abort_multipart_upload(key, upload_id)
            except oss2.exceptions.OssError as err:
                log.warning("could not abort the multipart upload of %s: HTTP %s", key, err.status)
            raise

    def download_file(
        self,
        oss_key: str,
        save_file: str | os.PathLike[str],
        *,
        endpoint: str | None = None,
        bucket_name: str | None = None,
    ) -> Path:
        """Download object ``oss_key`` to ``save_file`` (atomic rename)."""
        bucket = self._bucket(endpoint, bucket_name)
        target = Path(save_file)
        with atomic_target(target) as tmp:
            call = functools.partial(bucket.get_object_to_file, oss_key, os.fspath(tmp))
            self._call("get object", call)
        return target

"""OpenAPIContext: files of jobs run through the Bohrium OpenAPI (``bohrium-sdk``).

The staging job root, the job id records, the result handling and the cleaning are
those of :class:`~dpdispatcher.contexts.dp_cloud_server_context.DpCloudServerContext`;
what differs is the account (an access key instead of a login), the job settings
(flat keys of ``remote_profile``, as dpdispatcher 1.1.0 reads them) and the storage
(Tiefblue, through the SDK). ``bohrium-sdk`` is the optional extra ``bohrium``: it is
imported when the first job is uploaded, and its absence is a
:class:`~dpdispatcher.errors.ConfigurationError` naming the extra.

Examples
--------
>>> from dpdispatcher.base_context import BaseContext
>>> ctx = BaseContext.load_from_dict({"context_type": "OpenAPIContext", "local_root": ".",
...     "remote_profile": {"access_key": "ak-secret", "project_id": 7,
...                        "machine_type": "c2_m4_cpu", "image_address": "ubuntu:22.04"}})
>>> "access_key" in ctx.public_profile(), ctx.input_data["scass_type"]
(False, 'c2_m4_cpu')
"""

from __future__ import annotations

import importlib.util
import os
from typing import TYPE_CHECKING, Any, ClassVar

from dpdispatcher._archive_write import write_zip
from dpdispatcher.contexts.dp_cloud_server_context import DpCloudServerContext
from dpdispatcher.dlog import dlog
from dpdispatcher.dpcloudserver._records import job_zip_file
from dpdispatcher.dpcloudserver.zip_file import unzip_file, zip_file_list
from dpdispatcher.errors import ConfigurationError

if TYPE_CHECKING:
    from dpdispatcher.dpcloudserver.openapi import OpenApiClient
    from dpdispatcher.job import Job

#: ``zip_file_list``/``unzip_file`` are importable from here, as in 1.1.0
__all__ = ["OpenAPIContext", "found_bohriumsdk", "unzip_file", "zip_file_list"]

#: whether ``bohrium-sdk`` is installed (1.1.0's flag; looked up without importing it)
found_bohriumsdk: bool = importlib.util.find_spec("bohrium") is not None

_CLIENT_OPTIONS = ("max_retries", "backoff", "max_backoff", "sleep")


def _from_env(profile: dict[str, Any], key: str, *names: str) -> Any:
    value = profile.get(key)
    for name in names:
        if value in (None, ""):
            value = os.environ.get(name)
    return value


class OpenAPIContext(DpCloudServerContext):
    """Files of the jobs of the Bohrium OpenAPI: zipped, uploaded to Tiefblue, fetched.

    ``remote_profile``: ``access_key`` (or ``BOHRIUM_ACCESS_KEY`` / ``ACCESS_KEY``),
    ``project_id`` (or ``BOHRIUM_PROJECT_ID`` / ``PROJECT_ID``), ``app_key``,
    ``job_name`` (default ``DP-GEN``), ``machine_type``, ``platform`` (default
    ``ali``), ``image_address``, ``grouped`` (default true), ``ignore_exit_code``
    (default true) and ``keep_backup``. The keys are never persisted or logged.
    """

    alias: ClassVar[tuple[str, ...]] = ()
    secret_keys: ClassVar[tuple[str, ...]] = ("access_key", "app_key")

    def job_settings(self, profile: dict[str, Any]) -> tuple[int | str, dict[str, Any]]:
        """``project_id`` and the job settings the OpenAPI job is added with."""
        project = _from_env(profile, "project_id", "BOHRIUM_PROJECT_ID", "PROJECT_ID")
        try:
            project_id = int(project)
        except (TypeError, ValueError):
            raise ConfigurationError(
                "machine/remote_profile/project_id is required for OpenAPIContext: the "
                f"integer id of a Bohrium project (or BOHRIUM_PROJECT_ID); got {project!r}"
            ) from None
        if not _from_env(profile, "access_key", "BOHRIUM_ACCESS_KEY", "ACCESS_KEY"):
            raise ConfigurationError(
                "machine/remote_profile/access_key is required for OpenAPIContext (or the "
                "BOHRIUM_ACCESS_KEY environment variable)"
            )
        self.grouped = bool(profile.get("grouped", True))
        settings = {
            "job_type": "container",
            "job_name": profile.get("job_name") or "DP-GEN",
            "scass_type": profile.get("machine_type", ""),
            "platform": profile.get("platform") or "ali",
            "image_name": profile.get("image_address", ""),
        }
        return project_id, settings

    @classmethod
    def machine_subfields(cls) -> list[Any]:
        """The ``remote_profile`` of the OpenAPI."""
        from dargs import Argument

        from dpdispatcher.arginfo import optional_field

        fields = [
            optional_field(
                "access_key", str, None, "Access key (else BOHRIUM_ACCESS_KEY); never persisted."
            ),
            optional_field(
                "project_id", [int, str], None, "Bohrium project id (else BOHRIUM_PROJECT_ID)."
            ),
            optional_field(
                "app_key", str, None, "Application key sent as x-app-key; never persisted."
            ),
            optional_field("job_name", str, "DP-GEN", "Name of the cloud jobs."),
            optional_field("machine_type", str, "", "Machine type (scassType), e.g. c2_m4_cpu."),
            optional_field("platform", str, "ali", "Cloud platform."),
            optional_field("image_address", str, "", "Container image the jobs run in."),
            optional_field("grouped", bool, True, "Put the submission's jobs in one job group."),
            optional_field(
                "ignore_exit_code", bool, True, "Judge an ended job by its finish tag only."
            ),
            optional_field("keep_backup", bool, False, "Keep each job's whole result in backup/."),
        ]
        return [Argument("remote_profile", dict, fields, optional=True, default={})]

    @property
    def client(self) -> OpenApiClient:  # type: ignore[override]
        """The OpenAPI client (the SDK is imported when a call needs it)."""
        with self._client_lock:
            if self._openapi is None:
                from dpdispatcher.dpcloudserver.openapi import OpenApiClient

                profile = self.remote_profile
                options = {k: v for k, v in self.client_options.items() if k in _CLIENT_OPTIONS}
                self._openapi = OpenApiClient(
                    access_key=str(
                        _from_env(profile, "access_key", "BOHRIUM_ACCESS_KEY", "ACCESS_KEY")
                    ),
                    project_id=int(self.program_id),
                    app_key=_from_env(profile, "app_key", "BOHRIUM_APP_KEY"),
                    **options,
                )
            return self._openapi

    _openapi: OpenApiClient | None = None

    def check_login(self) -> None:
        """Make sure bohrium-sdk is there before any job is created."""
        from dpdispatcher.dpcloudserver.openapi import import_sdk

        import_sdk()

    def close(self) -> None:
        """Close the SDK's HTTP client."""
        if self._openapi is not None:
            self._openapi.close()

    def upload_to(self, job: Job, object_key: str, token: str, store_host: str | None) -> None:
        """Zip ``job``'s files and upload the archive to Tiefblue at ``object_key``."""
        archive = self._abs(job_zip_file(job.job_hash))
        os.makedirs(os.path.dirname(archive), exist_ok=True)
        count = write_zip(archive, self._job_entries(job))
        try:
            self.client.upload(archive, object_key, token, store_host)
        finally:
            os.unlink(archive)
        dlog.debug("uploaded %d entries of job %s to %s", count, job.job_hash, object_key)

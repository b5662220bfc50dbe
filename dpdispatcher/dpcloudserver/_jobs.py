"""The service's view of jobs: status codes and finding jobs in the listing (pure or
one client call each), shared by the Bohrium and OpenAPI machines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dpdispatcher._script import quoting
from dpdispatcher.dlog import dlog
from dpdispatcher.utils.job_status import JobStatus

from ._wire import oss_paths_of

if TYPE_CHECKING:
    from ._models import JobDetail

__all__ = [
    "CLOUD_STATUS",
    "NODATA",
    "cloud_job_status",
    "find_by_oss_path",
    "listing",
    "new_log_text",
    "wire_id",
]

#: the code of "no such job"
NODATA = "2300"
_PAGE = 100
_MAX_PAGES = 20

#: the service's status codes (finished/terminated here mean "ended": see the tag)
CLOUD_STATUS: dict[int, JobStatus] = {
    -1: JobStatus.terminated,
    0: JobStatus.waiting,
    1: JobStatus.running,
    2: JobStatus.finished,
    3: JobStatus.waiting,
    4: JobStatus.running,
    5: JobStatus.terminated,
    6: JobStatus.running,
    9: JobStatus.waiting,
}


def cloud_job_status(status: int, exit_code: int | None, ignore_exit_code: bool) -> JobStatus:
    """Map a status code and exit code of the service (pure).

    ``finished`` means "ended: judge by the finish tag"; ``terminated`` means failed
    whatever the tag says; an unknown code gives ``unknown``.
    """
    failed_exit = exit_code not in (None, 0)
    if status == -1:
        return JobStatus.finished if failed_exit and ignore_exit_code else JobStatus.terminated
    mapped = CLOUD_STATUS.get(status, JobStatus.unknown)
    if mapped == JobStatus.finished and failed_exit and not ignore_exit_code:
        return JobStatus.terminated
    return mapped


def wire_id(value: str) -> int | str:
    """An id as the service sent it: numeric ids go back as numbers."""
    return int(value) if value.isdigit() else value


def items_of(page: Any) -> list[Mapping[str, Any]]:
    if isinstance(page, Mapping):
        page = page.get("items", page.get("list", []))
    return [item for item in page if isinstance(item, Mapping)] if isinstance(page, list) else []


def listing(client: Any, group: str | None) -> list[Mapping[str, Any]]:
    """Every job of ``group`` (or, without one, the user's recent jobs), page by page."""
    items: list[Mapping[str, Any]] = []
    for page in range(_MAX_PAGES):  # the first page is page 0, as 1.1.0 asks it
        data = client.list_jobs(page, _PAGE, job_group_id=group)
        batch = items_of(data)
        items += batch
        total = data.get("total") if isinstance(data, Mapping) else None
        if len(batch) < _PAGE or (isinstance(total, int) and len(items) >= total):
            break
    return items


def find_by_oss_path(
    client: Any, oss_path: str, group: str | None
) -> tuple[str, str | None] | None:
    """``(job id, group id)`` of the listed job created from object ``oss_path``."""
    for item in listing(client, group):
        if any(url.endswith("/" + oss_path) for url in oss_paths_of(item)):
            job_id = quoting.job_id(str(item.get("id", item.get("jobId"))))
            group_id = item.get("jobGroupId")
            return job_id, None if group_id in (None, "") else str(group_id)
    return None


def new_log_text(client: Any, job_id: str, offsets: dict[str, int]) -> str:
    """What job ``job_id``'s log gained since ``offsets[job_id]`` bytes (updated); ""
    when there is nothing new or the log cannot be read yet."""
    from ._models import CloudAPIError

    seen = offsets.get(job_id, 0)
    try:
        text = str(client.job_log(job_id, seen))
    except CloudAPIError:
        return ""
    offsets[job_id] = seen + len(text.encode())
    return text


def job_details(
    client: Any, jobs: Sequence[tuple[str, str]], group: str | None
) -> dict[str, JobDetail | None]:
    """The detail of each ``(job hash, cloud job id)`` by job hash: one listing of
    ``group`` (if any), then one call per job it missed; None for a job the service
    no longer knows."""
    from ._models import CloudAPIError
    from .client import detail_from_item

    by_id: dict[str, JobDetail] = {}
    if group is not None:
        for item in listing(client, group):
            detail = detail_from_item(item)
            if detail is not None:
                by_id[str(detail.job_id)] = detail
    out: dict[str, JobDetail | None] = {}
    for job_hash, job_id in jobs:
        detail = by_id.get(job_id)
        if detail is None:
            try:
                detail = client.job_detail(job_id)
            except CloudAPIError as err:
                if err.code != NODATA:
                    raise
                dlog.warning("cloud job %s of job %s is gone", job_id, job_hash)
        out[job_hash] = detail
    return out


def failure_note(client: Any, job_id: str, detail: JobDetail) -> str:
    """What the give-up message adds for a failed cloud job: its id, code and log URL."""
    from ._models import CloudAPIError

    try:
        urls = client.log_urls(job_id)
    except CloudAPIError as err:
        urls = []
        dlog.debug("no log URL for cloud job %s: %s", job_id, err)
    log = urls[0] if urls else "(the service gave no log URL)"
    return (
        f"cloud job {job_id} ended with status {detail.status}, exit code "
        f"{detail.exit_code}; its log: {log}"
    )

"""Reference-manual import path for :class:`~dpdispatcher.utils.job_status.JobStatus`."""

from dpdispatcher.utils.job_status import JobStatus

__all__ = ["JobStatus"]

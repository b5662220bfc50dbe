"""One exception hierarchy for the whole package.

Every error derives from :class:`DPDispatcherError` and, where the original
dpdispatcher raised a builtin, also from that builtin, so ``except RuntimeError``
or ``except FileNotFoundError`` clauses written against the original still work.
"""

from __future__ import annotations

from dargs.dargs import ArgumentError, ArgumentKeyError, ArgumentTypeError, ArgumentValueError


class DPDispatcherError(Exception):
    """Base class of every error raised by dpdispatcher."""


class ConfigurationError(DPDispatcherError, ValueError):
    """A machine, resources, task or submission description is invalid."""


class ConfigurationTypeError(ConfigurationError, TypeError):
    """A description holds a value of the wrong type where 1.1.0 raised ``TypeError``
    (e.g. an ``envs`` name that is not a string)."""


class _DargsCompatible(ConfigurationError):
    """Keeps our message and ``str()`` while also being a dargs ``ArgumentError``."""

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.path = ""
        self.message: str | None = message

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class SchemaKeyError(_DargsCompatible, ArgumentKeyError):
    """A required key is missing (also a dargs ``ArgumentKeyError``, as 1.x raised)."""


class SchemaTypeError(_DargsCompatible, ArgumentTypeError):
    """A key has a value of the wrong type (also a dargs ``ArgumentTypeError``)."""


class SchemaValueError(_DargsCompatible, ArgumentValueError):
    """A key has an invalid value (also a dargs ``ArgumentValueError``)."""


def schema_error(err: ArgumentError) -> type[ConfigurationError]:
    """Our error class for a dargs error (keeping its dargs class as a base)."""
    if isinstance(err, ArgumentKeyError):
        return SchemaKeyError
    if isinstance(err, ArgumentTypeError):
        return SchemaTypeError
    if isinstance(err, ArgumentValueError):
        return SchemaValueError
    return ConfigurationError


class UnknownNameError(_DargsCompatible, KeyError, ArgumentValueError):
    """A batch type or context type name is not registered (also a dargs
    ``ArgumentValueError``, which 1.x raised for an unknown context type)."""


class ContextError(DPDispatcherError, RuntimeError):
    """The transport (local shell, SSH, HTTP) failed to run a command or move a file."""


class CommandError(ContextError):
    """A command run through a context exited with a non-zero status."""

    def __init__(self, cmd: str, exit_code: int, stderr: str) -> None:
        self.cmd = cmd
        self.exit_code = exit_code
        self.stderr = stderr
        super().__init__(
            f"command {cmd!r} failed with exit code {exit_code}: {stderr.strip()[-2000:]}"
        )


class RemoteFileNotFoundError(ContextError, FileNotFoundError):
    """A file expected on the execution side (e.g. a backward file) does not exist."""


class UnsafeArchiveError(ContextError, ValueError):
    """An archive received from a remote holds an entry that would escape its target.

    Also a ``ValueError``, as in 1.1.0.
    """


class SchedulerError(DPDispatcherError, RuntimeError):
    """The batch scheduler rejected a command or answered something unexpected."""


class TransientSchedulerError(SchedulerError):
    """The scheduler is temporarily unreachable; the operation is retried later."""


class AmbiguousSubmitError(TransientSchedulerError):
    """A submit command failed in a way that leaves open whether the job was queued.

    The job is looked up in the queue by its tag before anything is resubmitted.
    """


class StatusFormatError(SchedulerError):
    """The scheduler's status command does not offer the output format asked for."""


class JobFailedError(DPDispatcherError, RuntimeError):
    """A job kept failing after ``retry_count`` resubmissions."""


class RecoveryError(DPDispatcherError, RuntimeError):
    """Persisted submission state exists but does not match this submission."""


class MissingStateError(RecoveryError, FileNotFoundError):
    """State a caller pointed at (``previous_submission_hash``) does not exist."""


class JobRootConflictError(RecoveryError, FileExistsError):
    """A job root cannot be moved to its new name: both the old and the new one exist."""


class StagingPathError(ConfigurationError):
    """A staging path is absolute, climbs out of its root with ``..``, holds a NUL or a glob
    where none is allowed, or two sources map to the same destination
    (:mod:`dpdispatcher.file_manager`)."""


class MissingInputError(ConfigurationError, FileNotFoundError):
    """A forward or common file named in the submission does not exist locally."""


class RecordNotFoundError(ConfigurationError, FileNotFoundError):
    """No local record of the submission hash asked for (``dpdisp submission HASH``)."""


class HDFSMissingPathError(ContextError):
    """An HDFS path a command needed does not exist (Hadoop: "No such file or directory")."""


class RetryExhaustedError(DPDispatcherError, RuntimeError):
    """A function decorated with :func:`dpdispatcher.utils.utils.retry` kept failing."""

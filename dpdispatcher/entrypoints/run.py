"""``dpdisp run``: run a Python script carrying PEP 723 metadata (see :mod:`dpdispatcher.run`)."""

from __future__ import annotations

from pathlib import Path

from dpdispatcher.errors import ConfigurationError
from dpdispatcher.run import run_pep723


def run(*, filename: str, allow_ref: bool = False) -> None:
    """Run the script ``filename`` as the submission its metadata describes."""
    try:
        text = Path(filename).read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise ConfigurationError(f"dpdisp run: no such script {filename!r}") from err
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigurationError(f"dpdisp run: cannot read {filename!r}: {err}") from err
    run_pep723(text, allow_ref=allow_ref)

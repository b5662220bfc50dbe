"""The runnable examples in the public docstrings."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "dpdispatcher",
    "dpdispatcher.machine",
    "dpdispatcher.resources",
    "dpdispatcher.submission",
    "dpdispatcher.task",
    "dpdispatcher.utils.utils",
    "dpdispatcher.utils.archive",
    "dpdispatcher.file_manager",
    "dpdispatcher.file_manager._paths",
    # modules split out of larger ones (their examples were run there before)
    "dpdispatcher._relpath",
    "dpdispatcher._archive",
    "dpdispatcher._archive_check",
    "dpdispatcher.contexts._ssh_endpoint",
    "dpdispatcher.machines._slurm_parse",
    "dpdispatcher.machines._pbs_parse",
    "dpdispatcher._journal",
    "dpdispatcher._walk",
    "dpdispatcher._archive_write",
    "dpdispatcher.utils.job_status",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0

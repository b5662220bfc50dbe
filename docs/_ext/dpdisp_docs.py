"""Sphinx directives that generate pages of the dpdispatcher docs from the code at build time.

- ``.. dpdisp-registry:: batch`` / ``context``: a table of the registered batch types or
  context types, their aliases and the first line of their docstring.
- ``.. dpdisp-cli::``: the ``--help`` text of ``dpdisp`` and of each of its subcommands, taken
  from :func:`dpdispatcher.dpdisp.build_parser`.
- ``.. dpdisp-examples:: machine/*.json``: every example file matching the pattern (relative
  to ``examples/``), each under its own heading, with its ``_comment`` as the text.

The parameter pages use the ``dargs`` directive of :mod:`dargs.sphinx` on the schemas in
:mod:`dpdispatcher.arginfo`, so the parameters are described once, in the code.
"""

from __future__ import annotations

import argparse
import inspect
import io
import json
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.parsers.rst import Directive
from docutils.statemachine import StringList
from sphinx.util.nodes import nested_parse_with_titles

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _parse_rst(directive: Directive, lines: list[str]) -> list[nodes.Node]:
    node = nodes.section()
    node.document = directive.state.document
    nested_parse_with_titles(directive.state, StringList(lines, "<generated>"), node)
    return list(node.children)


def _summary(cls: type) -> str:
    doc = inspect.getdoc(cls) or ""
    return doc.strip().split("\n\n")[0].replace("\n", " ")


class RegistryDirective(Directive):
    """A table of the registered batch types (``batch``) or context types (``context``)."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        import dpdispatcher  # noqa: F401  (registers the built-in types)
        from dpdispatcher.base_context import BaseContext
        from dpdispatcher.machine import Machine

        kind = self.arguments[0]
        registry: Any = {"batch": Machine, "context": BaseContext}.get(kind)
        if registry is None:
            raise self.error("argument must be 'batch' or 'context'")
        lines = [
            ".. list-table::",
            "   :header-rows: 1",
            "   :widths: 20 25 55",
            "",
            "   * - Name",
            "     - Also accepted as",
            "     - Description",
        ]
        for name, cls in sorted(registry.canonical_classes().items()):
            aliases = ", ".join(f"``{a}``" for a in cls.alias) or "—"
            lines += [
                f"   * - :class:`{name} <{cls.__module__}.{cls.__qualname__}>`",
                f"     - {aliases}",
                f"     - {_summary(cls) or '—'}",
            ]
        return _parse_rst(self, lines)


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _help_text(parser: argparse.ArgumentParser) -> str:
    out = io.StringIO()
    with redirect_stdout(out):
        parser.print_help()
    return out.getvalue()


class CliDirective(Directive):
    """The help of ``dpdisp`` and of every subcommand, as literal blocks under headings."""

    def run(self) -> list[nodes.Node]:
        from dpdispatcher.dpdisp import build_parser

        parser = build_parser()
        parser.formatter_class = lambda prog: argparse.HelpFormatter(prog, width=90)
        blocks: list[tuple[str, str]] = [("dpdisp", _help_text(parser))]
        for name, sub in _subparsers(parser).items():
            sub.formatter_class = parser.formatter_class
            blocks.append((f"dpdisp {name}", _help_text(sub)))
        lines: list[str] = []
        for title, text in blocks:
            lines += [f"``{title}``", "-" * (len(title) + 4), "", ".. code-block:: text", ""]
            lines += ["   " + ln if ln.strip() else "" for ln in text.rstrip().splitlines()]
            lines.append("")
        return _parse_rst(self, lines)


class ExamplesDirective(Directive):
    """Every example JSON file matching a glob under ``examples/``."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        lines: list[str] = []
        env = self.state.document.settings.env
        for path in sorted(EXAMPLES.glob(self.arguments[0])):
            env.note_dependency(str(path))
            rel = path.relative_to(EXAMPLES.parent)
            data = json.loads(path.read_text(encoding="utf-8"))
            title = f"``{rel}``"
            lines += [title, "~" * len(title), ""]
            comment = data.get("_comment") if isinstance(data, dict) else None
            if comment:
                lines += [comment, ""]
            lines += [f".. literalinclude:: /../{rel}", "   :language: json", ""]
        if not lines:
            raise self.error(f"no example matches {self.arguments[0]!r}")
        return _parse_rst(self, lines)


def setup(app: Any) -> dict[str, Any]:
    app.add_directive("dpdisp-registry", RegistryDirective)
    app.add_directive("dpdisp-cli", CliDirective)
    app.add_directive("dpdisp-examples", ExamplesDirective)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

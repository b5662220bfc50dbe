"""``dpdisp gui``: the DP-GUI web form for machine, resources and task files."""

from __future__ import annotations

from typing import Any

from dpdispatcher.errors import ConfigurationError


def start_dpgui(*, port: int, bind_all: bool, **kwargs: Any) -> None:
    """Serve DP-GUI (needs ``pip install dpgui``), which lists this package's schemas.

    Parameters
    ----------
    port : int
        TCP port to listen on.
    bind_all : bool
        Listen on every interface instead of localhost only.
    **kwargs
        Passed to ``dpgui.start_dpgui``.
    """
    try:
        from dpgui import start_dpgui as serve  # type: ignore[import-not-found]
    except ImportError as err:
        raise ConfigurationError(
            "dpdisp gui needs the dpgui package: pip install dpgui "
            "(or pip install 'dpdispatcher[gui]')"
        ) from err
    serve(port=port, bind_all=bind_all, **kwargs)

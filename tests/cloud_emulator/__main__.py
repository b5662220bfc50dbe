"""Run the emulator stand-alone: ``python -m tests.cloud_emulator [--port N]``.

Prints the environment variables to export, then serves until interrupted. Inject
faults with ``curl -X POST http://127.0.0.1:N/_emulator/fail_next -d '{"count": 2}'``.
"""

from __future__ import annotations

import argparse
import threading

from .server import CloudEmulator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    emulator = CloudEmulator(args.workdir, port=args.port).start()
    for name, value in emulator.env().items():
        print(f"export {name}={value}")
    print(f"# login: email {emulator.EMAIL} / phone {emulator.PHONE}, password {emulator.PASSWORD}")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()

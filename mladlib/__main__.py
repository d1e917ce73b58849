"""``python -m mladlib ...``: see :mod:`mladlib.cli`.

Ctrl-C while the heavy modules import ends with "aborted" and status 130, like one
during a command; once the command is done, a Ctrl-C during the interpreter's exit
(atexit handlers, DataLoader workers joining) ends the process at once with 130, with no
"Exception ignored in atexit callback" traceback.
"""

import os
import signal
import sys


def _exit_now(signum, frame) -> None:
    os._exit(128 + signum)


def _run() -> int:
    try:
        from .cli import main
    except KeyboardInterrupt:
        print("aborted", file=sys.stderr)
        return 130
    return main()


try:
    code = _run()
finally:
    signal.signal(signal.SIGINT, _exit_now)  # from here on the process is only exiting
raise SystemExit(code)

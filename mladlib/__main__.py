"""``python -m mladlib ...``: see :mod:`mladlib.cli`."""

from .cli import main

raise SystemExit(main())

"""``python -m aioinfer`` is the ``aioinfer`` command."""

from .cli import main

raise SystemExit(main())

"""``python -m app.secrets check`` (see :func:`app.secrets.cli.main`)."""

from app.secrets.cli import main

raise SystemExit(main())

"""``python -m app.cli`` (how the retrain job runner starts training): the same as ``credit-score``."""

import sys

from app.cli import main

sys.exit(main())

"""`python -m bot` is the same as the `phi4bot` command."""

from bot.cli import main

raise SystemExit(main())

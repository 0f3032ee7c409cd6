"""`python -m nbterm` is the same as the `nbterm` command."""

from nbterm.cli.main import main

raise SystemExit(main())

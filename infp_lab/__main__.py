"""`python -m infp_lab` runs the command-line interface."""

from infp_lab.cli import main

raise SystemExit(main())

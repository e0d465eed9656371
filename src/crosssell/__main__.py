"""Run the command line as ``python -m crosssell``; see :mod:`crosssell.cli`."""

from crosssell.cli import main

if __name__ == "__main__":
    raise SystemExit(main())

"""`python -m leftqa`: the same as the `leftqa` command."""

from leftqa.app.cli import main

if __name__ == "__main__":
    raise SystemExit(main())

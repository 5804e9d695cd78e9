"""`python -m doseprint` runs the command-line interface."""

from doseprint.cli import main

if __name__ == "__main__":
    main()

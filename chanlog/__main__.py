"""``python -m chanlog``: the same as the ``chanlog`` console script."""

from chanlog.cli import main

if __name__ == "__main__":
    main()

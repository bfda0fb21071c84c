"""``python -m tvm_mixq``: the tvmc-compatible driver (same as the ``tvmc`` console script)."""
import sys

from .cli.tvmc import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m tvm_mixq"))

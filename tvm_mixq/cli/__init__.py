"""Command-line entry points: ``mixq`` (main.py) and the tvmc-compatible ``tvmc`` (tvmc.py)."""

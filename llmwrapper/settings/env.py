"""The environment reader every settings module shares, and the repository root.

An optional `.env` file beside manage.py is read once, here; variables already in the
environment win over it.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

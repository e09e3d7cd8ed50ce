"""`manage.py prepare`: make the service ready to serve, in the order that helps.

1. The database: unreachable or missing, one line says which server and database (and
   for a missing one, the command that creates it), and the command exits with 2.
2. The migrations.
3. With `--static`, the static files (`collectstatic`: hashed names, compressed copies).
4. Last, so that no install or migration line scrolls it away: a first admin key when
   no admin key is active, in a frame. In the demo (DEMO=true) every start prints a
   new admin key and a new password for the admin user `demo`.
"""

from __future__ import annotations

import secrets
import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from llmwrapper.management.database import database_problem
from tenants.services import api_key_create, ensure_admin_key

DEMO_USER = "demo"


class Command(BaseCommand):
    help = (
        "Check the database, migrate, optionally collect static files, and print a "
        "first admin key when none exists."
    )

    def add_arguments(self, parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument(
            "--static", action="store_true", help="Also run collectstatic (quietly)."
        )

    def handle(self, *args, static: bool, **options) -> None:  # type: ignore[no-untyped-def]
        problem = database_problem()
        if problem:
            sys.stderr.write(problem + "\n")
            sys.stderr.flush()
            raise SystemExit(2)
        verbosity = options["verbosity"]
        call_command("migrate", interactive=False, verbosity=verbosity)
        if static:
            call_command("collectstatic", interactive=False, verbosity=0)
        lines = self._demo_lines() if settings.DEMO else self._first_key_lines()
        if lines:
            self.stdout.write(frame(lines))

    def _first_key_lines(self) -> list[str]:
        raw = ensure_admin_key(name="admin")
        if raw is None:
            return []
        return [
            "Admin API key (shown only once, store it now):",
            "",
            f"    {raw}",
            "",
            "Lost it? manage.py create_admin_key --name another",
        ]

    def _demo_lines(self) -> list[str]:
        from django.contrib.auth import get_user_model

        _, raw = api_key_create(name="demo")
        password = secrets.token_urlsafe(9)
        users = get_user_model()
        user = users.objects.filter(username=DEMO_USER).first() or users(username=DEMO_USER)
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        return [
            "DEMO: every model is a scripted stand-in; no vendor is called.",
            "",
            "Admin API key (new at every demo start):",
            "",
            f"    {raw}",
            "",
            f"Django admin: user {DEMO_USER}, password {password}",
        ]


def frame(lines: list[str]) -> str:
    """Lines in a box of '#', so they stand out of a terminal's scroll."""
    width = max(len(line) for line in lines) + 4
    rule = "#" * (width + 2)
    body = [f"#  {line.ljust(width - 2)}#" for line in lines]
    return "\n".join(["", rule, *body, rule, ""])

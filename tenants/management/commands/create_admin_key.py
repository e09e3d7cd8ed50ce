from django.core.management.base import BaseCommand

from tenants.services import api_key_create, ensure_admin_key


class Command(BaseCommand):
    help = "Create an admin API key and print it once."

    def add_arguments(self, parser) -> None:  # type: ignore[no-untyped-def]
        parser.add_argument("--name", default="admin")
        parser.add_argument(
            "--if-none",
            action="store_true",
            help="Only create a key when no active admin key exists (prints nothing otherwise).",
        )

    def handle(self, *args, name: str, if_none: bool, **options) -> None:  # type: ignore[no-untyped-def]
        if if_none:
            raw = ensure_admin_key(name=name)
            if raw is None:
                return
        else:
            _, raw = api_key_create(name=name)
        self.stdout.write("Admin API key (shown only once, store it now):")
        self.stdout.write(raw)

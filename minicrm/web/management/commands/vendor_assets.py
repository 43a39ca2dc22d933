"""Copy the front-end packages installed by npm into the static and icon folders under var/."""

import re
import shutil
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

# (file or folder inside node_modules, destination under VENDOR_DIR)
STATIC_FILES = [
    ("htmx.org/dist/htmx.min.js", "htmx.min.js"),
    ("chart.js/dist/chart.umd.min.js", "chart.umd.min.js"),
    ("@fontsource-variable/inter/wght.css", "inter/wght.css"),
    ("@fontsource-variable/inter/files", "inter/files"),
]
# The reference the production static storage follows (and rewrites to a hashed name) in
# JavaScript and CSS files; `collectstatic` fails when the file it names is missing.
SOURCE_MAP = re.compile(rb"[#@] sourceMappingURL=([^\s*'\"]+)")


class Command(BaseCommand):
    help = "Copy htmx, Chart.js, the Inter font and Lucide icons out of node_modules."

    def handle(self, *args: Any, **options: Any) -> None:
        node_modules = Path(settings.BASE_DIR) / "node_modules"
        if not node_modules.is_dir():
            raise CommandError("node_modules is missing: run `npm ci` first.")
        vendor = Path(settings.VENDOR_DIR)
        for source, target in STATIC_FILES:
            self._copy(node_modules / source, vendor / target)
        self._copy(node_modules / "lucide-static/icons", Path(settings.VAR_DIR) / "icons")
        self.stdout.write(self.style.SUCCESS(f"Front-end assets copied to {vendor}"))

    def _copy(self, source: Path, target: Path) -> None:
        if not source.exists():
            raise CommandError(f"{source} is missing: run `npm ci` again.")
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
            return
        shutil.copy2(source, target)
        if source.suffix in {".js", ".css"}:
            for name in source_maps(source):
                self._copy(source.parent / name, target.parent / name)


def source_maps(path: Path) -> list[str]:
    """The relative source maps a JavaScript or CSS file names (URLs and data: URIs aside)."""
    names = [match.decode() for match in SOURCE_MAP.findall(path.read_bytes())]
    return [name for name in names if ":" not in name and not name.startswith("/")]

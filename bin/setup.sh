# Shared by bin/dev and bin/test: installs what the project needs, idempotently.
# Sourced, not run. Needs only Python 3.11+ and Node.js/npm on the machine.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export UV_PYTHON_DOWNLOADS=never   # use the machine's Python; never fetch one
export UV_LINK_MODE=copy
mkdir -p var

say() { printf '\033[1;34m==>\033[0m %s\n' "$*"; }

ensure_uv() {
  if command -v uv >/dev/null 2>&1; then UV="$(command -v uv)"; return; fi
  UV="$ROOT/var/tools/bin/uv"
  if [ ! -x "$UV" ]; then
    say "Installing uv (the Python package manager) into var/tools"
    python3 -m venv "$ROOT/var/tools"
    "$ROOT/var/tools/bin/pip" install --quiet --disable-pip-version-check "uv==0.13.8"
  fi
}

ensure_python_packages() {
  ensure_uv
  say "Python packages (uv sync --frozen)"
  "$UV" sync --frozen --quiet
  export PATH="$ROOT/.venv/bin:$PATH"
}

ensure_frontend_packages() {
  # npm ci only when package-lock.json changed since the last install.
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    say "Front-end packages (npm ci)"
    npm ci --no-audit --no-fund --loglevel=error
  fi
  python manage.py vendor_assets >/dev/null
}

# Sourced by the scripts: make .venv (once) and install evlog into it with the given extras,
# again only when pyproject.toml or the extras asked for changed (an editable install: the
# code itself is read from the tree).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
STAMP=".venv/.evlog-installed"
WANT="$(sha256sum pyproject.toml | cut -d' ' -f1) [$1]"
if [ ! -f "$STAMP" ] || ! grep -qxF "$WANT" "$STAMP"; then
    .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[$1]"
    echo "$WANT" >> "$STAMP"
fi

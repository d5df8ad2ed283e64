#!/usr/bin/env bash
# ansible-test needs the collection physically at .../ansible_collections/vmguard/hardening
# (a symlink does not count): copy the tracked files into a scratch tree and run there.
#   scripts/ansible-test.sh sanity [extra ansible-test args]
set -euo pipefail
. "$(dirname "$0")/common.sh"
activate
tree="$VMGUARD_CACHE/ansible-test/ansible_collections/vmguard/hardening"
rm -rf "$tree"
mkdir -p "$tree"
cd "$VMGUARD_ROOT"
# Tracked and new (not ignored) files: what a commit of the work tree would hold.
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
  [ -e "$f" ] || continue
  mkdir -p "$tree/$(dirname "$f")"
  cp -a "$f" "$tree/$f"
done
cd "$tree"
git init -q . && git add -A >/dev/null 2>&1  # ansible-test lists files through git when it can
py=$(python -c 'import sys; print("%d.%d" % sys.version_info[:2])')
# ansible-test --venv bootstraps pip from a host this network cannot reach. Instead it gets a
# venv of its own (the sanity tools pin versions that must not leak into the main toolchain),
# created from the same interpreter, where '--requirements' installs them from PyPI.
tvenv="$VMGUARD_CACHE/ansible-test-venv"
core=$(python -c 'import ansible; print(ansible.__version__)' 2>/dev/null || python -c 'from ansible.release import __version__; print(__version__)')
if [ ! -x "$tvenv/bin/ansible-test" ] || [ "$("$tvenv/bin/python" -c 'from ansible.release import __version__; print(__version__)')" != "$core" ]; then
  info "creating $tvenv with ansible-core $core"
  rm -rf "$tvenv"
  python -m venv "$tvenv"
  "$tvenv/bin/python" -m pip install -q --progress-bar off "ansible-core==$core"
fi
export PATH="$tvenv/bin:$PATH"
# Each sanity test's own venv gets pip from get-pip.py, downloaded from a host this network does
# not reach. Stand in for it, in the cache place ansible-test looks first: bootstrap pip from the
# interpreter's own ensurepip, then install the exact packages ansible-test asks for from PyPI.
pipver=$(python - <<'PY'
import pathlib, re, ansible_test
src = (pathlib.Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py").read_text()
print(re.search(r"pip='([0-9.]+)'", src).group(1))
PY
)
stand_in="$HOME/.ansible/test/cache/get_pip_${pipver//./_}.py"
mkdir -p "$(dirname "$stand_in")"
cat > "$stand_in" <<'PY'
# Stand-in for get-pip.py written by vmguard.hardening's scripts/ansible-test.sh.
import ensurepip
import subprocess
import sys

ensurepip.bootstrap()
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install"] + args))
PY
cmd=${1:-sanity}; shift || true
info "ansible-test $cmd --python $py (in $tree)"
ansible-test "$cmd" --python "$py" --requirements --color no "$@"

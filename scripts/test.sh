#!/usr/bin/env bash
# make test: every stage CI runs, in order, each timed. Stops at the first failing stage.
#   VMGUARD_TEST_STAGES="lint sanity unit integration faults molecule"   (default: all of them)
#   VMGUARD_MOLECULE_SCENARIOS="default"              (default: every scenario under molecule/)
set -euo pipefail
. "$(dirname "$0")/common.sh"
activate
cd "$VMGUARD_ROOT"
STAGES=${VMGUARD_TEST_STAGES:-lint sanity unit integration faults molecule}
declare -A took
STAGE_NAME='' STAGE_LOG=''

cleanup() {
  rc=$?
  if [[ " $STAGES " == *" molecule "* ]]; then
    # Whatever happened, no lab guest of the test run survives it.
    ansible-playbook vmguard.hardening.lab -i localhost, -e vmguard_lab_name=vmguard-molecule \
      -e vmguard_lab_state=absent >/dev/null 2>&1 || echo "WARNING: could not remove the molecule lab" >&2
    "$VMGUARD_ROOT/scripts/services.sh" stop || true
  fi
  step "Summary"
  for s in $STAGES; do
    [ -n "${took[$s]:-}" ] && info "$s: ${took[$s]}"
  done
  if [ "$rc" != 0 ] && [ -n "${STAGE_LOG:-}" ] && [ -f "$STAGE_LOG" ]; then
    # CI shows the end of the output: what failed goes last, by test name (pytest's short summary,
    # Molecule's failed actions, Ansible's fatal tasks).
    sleep 1  # the tee of the stage's output finishes writing
    info "$STAGE_NAME: FAILED (exit $rc); what failed:"
    # A fatal task's message goes on over the lines that follow it (Molecule wraps its output): up to 12
    # of them, until a blank line or the next task.
    sed -e 's/\x1b\[[0-9;]*m//g' "$STAGE_LOG" \
      | awk '/fatal: \[/ { print; more = 12; next }
             more > 0 && !/^[[:space:]│]*$/ && !/TASK \[|PLAY / { print; more--; next }
             { more = 0 }
             /^(FAILED|ERROR) |XPASS|Executed: Failed|^ERROR:|^E   / { print }' | tail -n 60 >&2 || true
    rm -f "$STAGE_LOG"
  fi
  exit $rc
}
trap cleanup EXIT

run_stage() {
  local name=$1; shift
  step "test: $name"
  local t0
  t0=$(date +%s)
  # set -e stops the run inside the stage; the exit trap then reads what failed from its log.
  STAGE_NAME=$name STAGE_LOG=$(mktemp "${TMPDIR:-/tmp}/vmguard-test-$name.XXXXXX")
  "$@" > >(tee "$STAGE_LOG") 2>&1
  rm -f "$STAGE_LOG"; STAGE_LOG=''
  took[$name]="passed in $(( $(date +%s) - t0 )) s"
}

stage_lint() {
  info "yamllint"
  yamllint --strict .
  info "ansible-lint (production profile, offline)"
  ansible-lint --offline --profile production
}

stage_sanity() {
  "$VMGUARD_ROOT/scripts/ansible-test.sh" sanity
}

stage_unit() {
  python -m pytest -q tests/unit
}

stage_integration() {
  # libvirt's own test-suite domains through the test driver, audited in one real playbook run.
  python -m pytest -q -s tests/integration
}

stage_faults() {
  # Fault injection (issue 11): a private libvirtd of the suite's own is killed and restarted (never the
  # system one), the revert watcher is killed, the ledger's two phases are interrupted, writers race.
  python -m pytest -q -s tests/faults
}

stage_molecule() {
  local scenarios s
  scenarios=${VMGUARD_MOLECULE_SCENARIOS:-$(find molecule -mindepth 2 -maxdepth 2 -name molecule.yml -printf '%h\n' | xargs -n1 basename)}
  # default first: it creates the shared lab the later scenarios reuse (the guests boot once);
  # isolation last: it rewires the lab's service networks (and proves it by traffic), which no other
  # scenario needs. The exit trap removes the lab whatever happens.
  export VMGUARD_KEEP_LAB=1
  scenarios=$(printf '%s\n' "$scenarios" | tr ' ' '\n' | sort \
    | awk '$0=="default"{print; next} $0=="isolation"{last=$0; next} {r=r $0 "\n"} END{printf "%s%s", r, last}')
  for s in $scenarios; do
    info "molecule test -s $s"
    # Wide lines: a failing task's message stays on one line in the log and in the summary above.
    COLUMNS=200 molecule test -s "$s"
  done
}

for s in $STAGES; do
  case "$s" in
    lint|sanity|unit|integration|faults|molecule) run_stage "$s" "stage_$s" ;;
    *) die "unknown test stage '$s' (lint, sanity, unit, integration, faults, molecule)" ;;
  esac
done

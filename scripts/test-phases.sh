#!/usr/bin/env bash
# `make test`, phase by phase, so a newcomer sees it is not stuck: each phase is announced
# with its number, what it runs and roughly how long it takes on 2 cores, and ends with its
# time. Every phase runs even when an earlier one failed (except the lint and the set-up,
# which stop at once), and the end lists what failed.
#   usage: scripts/test-phases.sh BIN_DIR [pytest args...]
set -uo pipefail
bin="$1"; shift
start=$(date +%s)
failed=()
phase() {  # number, title, expected duration, command...
  local number="$1" title="$2" expected="$3"; shift 3
  local began=$(date +%s)
  printf '\n==> phase %s/5: %s (%s) [%ds so far]\n' "$number" "$title" "$expected" "$((began - start))"
  "$@"
  local status=$?
  [ $status -eq 5 ] && status=0  # pytest: nothing selected in this phase (PYTEST_ARGS="-k ...")
  printf '<== phase %s/5: %s %s in %ds\n' "$number" "$title" "$([ $status -eq 0 ] && echo passed || echo FAILED)" \
    "$(( $(date +%s) - began ))"
  [ $status -eq 0 ] || failed+=("$title")
  return $status
}
phase 1 "system packages" "seconds when installed; a few minutes otherwise" bash scripts/install-system-deps.sh || exit 1
phase 2 "lint" "seconds" bash -c "'$bin/ruff' check whisper_live tests scripts && '$bin/ruff' format --check whisper_live tests scripts" || exit 1
phase 3 "unit tests" "about a minute" "$bin/python" -m pytest -q -ra tests/unit "$@"
phase 4 "integration tests" "about 20 minutes on 2 cores: the real model over real sockets" \
  "$bin/python" -m pytest -q -ra tests/integration "$@"
phase 5 "browser tests" "a few minutes: headless Chromium" "$bin/python" -m pytest -q -ra tests/browser "$@"
total=$(( $(date +%s) - start ))
if [ ${#failed[@]} -gt 0 ]; then
  printf '\nmake test: FAILED (%s) after %dm%02ds\n' "$(IFS=,; echo "${failed[*]}")" $((total / 60)) $((total % 60))
  exit 1
fi
printf '\nmake test: every phase passed in %dm%02ds\n' $((total / 60)) $((total % 60))

#!/usr/bin/env bash
# The suite's last test (a ctest fixture cleanup, so it also runs after `ctest -R one_test`):
# no process a test started and no temp dir a test made outlives the test.
#
# How it tells: every test runs with FLOWGUARD_TEST_SUITE=<build dir>; every process a test
# starts gets FLOWGUARD_SPAWNED_BY=<the test's pid> (tests/support Process), which its own
# children inherit; every TempDir is named flowguard-test-<the test's pid>-XXXXXX. A process or
# a directory whose test process is gone has leaked. One still owned by a live test (another
# ctest run on the same machine) is left alone. Leftovers are listed, removed, and fail this test.
#
# Temp dirs are judged only when this run made them: tests/mark_suite_start touched
# FLOWGUARD_SUITE_STAMP before the first test, and a directory last changed before that belongs
# to an earlier run (one killed with the session that ran it leaves its dirs behind, and CI runs
# on that same machine). Such a directory is named and removed, but is not this run's failure.
set -u
suite="${FLOWGUARD_TEST_SUITE:?run through ctest}"
stamp="${FLOWGUARD_SUITE_STAMP:?run through ctest}"
tmp="${TMPDIR:-/tmp}"
[ -e "$stamp" ] || { echo "no $stamp: mark_suite_start did not run"; exit 1; }

# Leaked processes: PID STARTER, one per line.
leaked_processes() {
  local environ pid data starter
  for environ in /proc/[0-9]*/environ; do
    pid=${environ#/proc/}
    pid=${pid%/environ}
    [ "$pid" != "$$" ] || continue
    data=$(tr '\0' '\n' 2>/dev/null <"$environ") || continue
    grep -qxF "FLOWGUARD_TEST_SUITE=$suite" <<<"$data" || continue
    starter=$(sed -n 's/^FLOWGUARD_SPAWNED_BY=//p' <<<"$data")
    [ -n "$starter" ] || continue  # a test binary itself (ctest started it) or this script
    kill -0 "$starter" 2>/dev/null && continue
    echo "$pid $starter"
  done
}

# A process being stopped by the last test's destructors may still be exiting: look twice.
if [ -n "$(leaked_processes)" ]; then sleep 2; fi
status=0
while read -r pid starter; do
  [ -n "$pid" ] || continue
  echo "leftover process $pid (its test process $starter is gone): $(tr '\0' ' ' 2>/dev/null </proc/"$pid"/cmdline)"
  kill -KILL "$pid" 2>/dev/null
  status=1
done < <(leaked_processes)

for dir in "$tmp"/flowguard-test-*; do
  [ -d "$dir" ] || continue
  owner=${dir##*/flowguard-test-}
  owner=${owner%%-*}
  [[ "$owner" =~ ^[0-9]+$ ]] || continue  # not named by a test process (older naming)
  kill -0 "$owner" 2>/dev/null && continue
  if ! [ "$dir" -nt "$stamp" ]; then
    echo "removed $dir: left by an earlier run (its test process $owner is gone), not by this one"
    rm -rf "$dir"
    continue
  fi
  echo "leftover temp dir $dir (its test process $owner is gone): $(find "$dir" -maxdepth 2 | head -5 | tr '\n' ' ')"
  rm -rf "$dir"
  status=1
done

[ "$status" = 0 ] && echo "no leftover process or temp dir from the suite"
exit "$status"

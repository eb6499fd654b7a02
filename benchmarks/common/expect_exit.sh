#!/bin/sh
# Runs PROGRAM ARGS..., prints what it printed, and passes (exit 0) only when it exited with CODE and
# its output (stdout + stderr) contains MESSAGE as a fixed string. Used by ctest cases that check a
# refused option: ctest's PASS_REGULAR_EXPRESSION alone would ignore the exit code.
#   expect_exit.sh CODE MESSAGE PROGRAM [ARGS...]
code=$1 message=$2
shift 2
out=$("$@" 2>&1)
rc=$?
printf '%s\n' "$out"
if [ "$rc" -ne "$code" ]; then
  echo "expect_exit: exit code $rc, expected $code" >&2
  exit 1
fi
if ! printf '%s\n' "$out" | grep -qF -- "$message"; then
  echo "expect_exit: the output does not contain: $message" >&2
  exit 1
fi

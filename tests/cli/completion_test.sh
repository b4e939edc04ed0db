#!/bin/bash
# The generated bash completion of qtx completes as a user sees it: each
# case is the words typed, the cursor on the last one, and the exact
# candidates offered. Usage: completion_test.sh QTX_BINARY QTX_BASH_SCRIPT
set -u
qtx="$1"
source "$2"
failures=0

expect() {  # expect "CANDIDATES" WORD...
  local want="$1"
  shift
  COMP_WORDS=("$@")
  COMP_CWORD=$(($# - 1))
  COMPREPLY=()
  _qtx
  local got="${COMPREPLY[*]}"
  if [[ "$got" != "$want" ]]; then
    echo "FAIL: '$*' completes to '$got', expected '$want'"
    failures=$((failures + 1))
  fi
}

expect "exec exporter" qtx ex
expect "exec" qtx exe
expect "wiring wait-ready" qtx vm w
expect "list" qtx --json ssh-key l
expect "sync" qtx time s
expect "--json" qtx info --j
# Global options after the command name; a command's own option once.
expect "--socket" qtx --socket /run/x.sock vm wiring --so
expect "--timeout" qtx exec --tim
expect "--cwd --connect-timeout" qtx exec --timeout 5 --c
expect "--mode --max-size" qtx cp --m
# After --, the words are the guest's command line.
expect "" qtx exec -- --j

# Every command of `qtx --help` (and of each command with subcommands) is
# offered, and every option of its --help.
for cmd in $("$qtx" --help | sed -n '/^Subcommands:/,/^$/p' | awk 'NR > 1 && NF { print $1 }'); do
  COMP_WORDS=(qtx "$cmd"); COMP_CWORD=1; COMPREPLY=(); _qtx
  [[ " ${COMPREPLY[*]} " == *" $cmd "* ]] || { echo "FAIL: qtx does not offer $cmd"; failures=$((failures + 1)); }
  for opt in $("$qtx" "$cmd" --help | grep -oE '^ +(-[a-zA-Z],)?--[a-z0-9-]+' | sed 's/.*--/--/'); do
    COMP_WORDS=(qtx "$cmd" "$opt"); COMP_CWORD=2; COMPREPLY=(); _qtx
    [[ " ${COMPREPLY[*]} " == *" $opt "* ]] || { echo "FAIL: qtx $cmd does not offer $opt"; failures=$((failures + 1)); }
  done
done

echo "$failures failure(s)"
((failures == 0))

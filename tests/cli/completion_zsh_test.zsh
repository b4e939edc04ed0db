#!/bin/zsh
# The generated zsh completion of qtx offers the exact candidates for the
# words typed. compadd and _files are stood in for (they exist only inside
# a completion widget) by functions that print what they were given; the
# script's last line (the call compinit makes) is left out.
# Usage: completion_zsh_test.zsh QTX_ZSH_SCRIPT
compadd() { [[ "$1" == "--" ]] && shift; print -r -- "$*"; }
_files() { print -r -- "(files)"; }
script=$(<$1)
eval "${script%_qtx \"\$@\"}"
failures=0

expect() {  # expect "OUTPUT" WORD...
  local want="$1"
  shift
  words=("$@")
  CURRENT=$#
  local got
  got=$(_qtx)
  if [[ "$got" != "$want" ]]; then
    print -r -- "FAIL: '$*' gives '$got', expected '$want'"
    failures=$((failures + 1))
  fi
}

expect "ping info wait-ready exec cp telemetry freeze thaw freeze-status shutdown reboot set-password ssh-key time vm exporter decode" qtx ""
expect "overlay seed wiring wait-ready" qtx vm ""
expect "list add remove" qtx --json ssh-key ""
expect "-h --help --socket --port --libvirt --qemu --host-listens --version -s --listen --json --connect-timeout --timeout" \
  qtx --socket /run/x.sock vm wiring --
expect "(files)" qtx --socket ""
expect "(files)" qtx exec -- ""

print "$failures failure(s)"
((failures == 0))

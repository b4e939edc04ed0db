#!/usr/bin/env bash
# Instructions per operation, counted by callgrind: the same figure run after
# run however busy the machine is, where wall-clock times vary twofold. For
# each agent (qtx-agent, and qemu-ga unless --qtx-only) and each operation
# (a ping round trip, an uploaded MiB, a downloaded MiB), one side runs under
# callgrind while the other runs natively: the agent side (the agent process)
# and the client side (libqtx-host, or the qemu-ga JSON client of the
# comparison harness). Each figure is the difference between a large and a
# small run divided by the difference in operations, so start-up,
# connection and exit cancel out. Transfers are sha256-checked (qtx's
# default); valgrind's CPU has no SHA extensions, so hashing runs in
# software, as in a TCG guest.
#
#   scripts/instruction-counts.sh [--qtx-only] [--check FILE | --update FILE] [BUILD_DIR]
#
# --check FILE: fails when a qtx figure exceeds FILE's by more than 10%
# (FILE: bench/instruction-counts.txt). --update FILE: writes the qtx
# figures there. BUILD_DIR defaults to build.
set -euo pipefail
cd "$(dirname "$0")/.."

qtx_only=0
mode=""
file=""
while [ $# -gt 0 ]; do
  case "$1" in
    --qtx-only) qtx_only=1; shift ;;
    --check|--update) mode="${1#--}"; file="$2"; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    -*) echo "instruction-counts: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
build=${1:-build}
agent_bin="$build/bin/qtx-agent"
client_bin="$build/bin/instruction_client"
for b in "$agent_bin" "$client_bin"; do
  [ -x "$b" ] || { echo "instruction-counts: $b is missing (cmake --build $build)" >&2; exit 2; }
done
command -v valgrind >/dev/null || { echo "instruction-counts: valgrind is not installed" >&2; exit 2; }
qga_bin=""
if [ "$qtx_only" = 0 ]; then
  for p in /usr/sbin/qemu-ga /usr/bin/qemu-ga; do [ -x "$p" ] && qga_bin=$p && break; done
  [ -n "$qga_bin" ] || { echo "instruction-counts: qemu-ga is not installed (or pass --qtx-only)" >&2; exit 2; }
fi

work=$(mktemp -d)
agent_pid=""
cleanup() {
  [ -n "$agent_pid" ] && kill -KILL "$agent_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
printf '[telemetry]\ninterval_ms = 3600000\n' >"$work/agent.conf"
export LD_LIBRARY_PATH="$build/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
callgrind=(valgrind --tool=callgrind --dump-instr=no --compress-strings=no --compress-pos=no)

# Instructions in a callgrind output file (every thread).
total() { awk '/^(summary|totals):/ {print $2; exit}' "$1"; }

# run KIND SIDE OP COUNT: the instructions of SIDE (agent or client) for one
# run of COUNT operations.
run() {
  local kind=$1 side=$2 op=$3 count=$4
  local sock="$work/$kind.sock" out="$work/cg.out" wrap_agent=() wrap_client=()
  rm -f "$sock" "$out"
  if [ "$side" = agent ]; then wrap_agent=("${callgrind[@]}" --callgrind-out-file="$out"); fi
  if [ "$side" = client ]; then wrap_client=("${callgrind[@]}" --callgrind-out-file="$out"); fi
  if [ "$op" = download ]; then head -c "$((count * 1048576))" /dev/zero >"$work/file"; fi
  if [ "$kind" = qtx ]; then
    "${wrap_agent[@]}" "$agent_bin" --transport "unix-listen:$sock" --config "$work/agent.conf" --log-level warn \
      2>"$work/agent.log" &
  else
    mkdir -p "$work/qga-state"
    "${wrap_agent[@]}" "$qga_bin" -m unix-listen -p "$sock" -t "$work/qga-state" 2>"$work/agent.log" &
  fi
  agent_pid=$!
  # The socket appears once the agent listens (seconds under valgrind).
  local waited=0
  until [ -S "$sock" ]; do
    kill -0 "$agent_pid" 2>/dev/null || { cat "$work/agent.log" >&2; echo "instruction-counts: $kind exited" >&2; exit 1; }
    [ $waited -lt 600 ] || { echo "instruction-counts: $kind did not listen on $sock" >&2; exit 1; }
    sleep 0.1
    waited=$((waited + 1))
  done
  if ! "${wrap_client[@]}" "$client_bin" "$kind" "$sock" "$op" "$count" "$work" 2>"$work/client.log"; then
    cat "$work/client.log" "$work/agent.log" >&2
    exit 1
  fi
  kill -TERM "$agent_pid"
  wait "$agent_pid" || true
  agent_pid=""
  total "$out"
}

# per KIND SIDE OP SMALL LARGE: instructions per operation.
per() {
  local small large
  small=$(run "$1" "$2" "$3" "$4")
  large=$(run "$1" "$2" "$3" "$5")
  echo $(((large - small) / ($5 - $4)))
}

declare -A figure
names=()
for kind in qtx qemu-ga; do
  [ "$kind" = qemu-ga ] && [ "$qtx_only" = 1 ] && continue
  for side in agent client; do
    figure[$kind.$side.ping]=$(per "$kind" "$side" ping 100 1100)
    figure[$kind.$side.upload_mib]=$(per "$kind" "$side" upload 1 5)
    figure[$kind.$side.download_mib]=$(per "$kind" "$side" download 1 5)
  done
done
for side in agent client; do
  for op in ping upload_mib download_mib; do names+=("$side.$op"); done
done

printf '%-22s %16s %16s\n' "instructions" "qtx" "qemu-ga"
for n in "${names[@]}"; do
  printf '%-22s %16s %16s\n' "$n" "${figure[qtx.$n]}" "${figure[qemu-ga.$n]:--}"
done

case "$mode" in
  update)
    {
      echo "# Instructions per operation, qtx side, from scripts/instruction-counts.sh --update."
      echo "# CI fails when a figure grows by more than 10% (scripts/instruction-counts.sh --check)."
      for n in "${names[@]}"; do echo "$n ${figure[qtx.$n]}"; done
    } >"$file"
    echo "instruction-counts: wrote $file"
    ;;
  check)
    failed=0
    while read -r name committed; do
      case "$name" in ''|'#'*) continue ;; esac
      now=${figure[qtx.$name]:-}
      [ -n "$now" ] || { echo "instruction-counts: $file names $name, which is not measured" >&2; failed=1; continue; }
      if [ $((now * 10)) -gt $((committed * 11)) ]; then
        echo "instruction-counts: $name grew from $committed to $now instructions (more than 10%)" >&2
        failed=1
      else
        echo "instruction-counts: $name $now (committed $committed)"
      fi
    done <"$file"
    exit $failed
    ;;
esac

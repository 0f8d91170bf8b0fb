#!/usr/bin/env bash
# usage: uml.sh COMMAND [ARG ...]
#
# Runs COMMAND as root inside a user-mode Linux kernel (Debian's
# user-mode-linux, installed when missing) whose root file system is this
# machine's own (hostfs), from the current directory, with the BENCH_*
# variables passed in; exits with COMMAND's status.
#
# Why: holding 50 000 TLS connections in one process needs an open-file
# limit above 50 000, and raising a hard RLIMIT_NOFILE needs CAP_SYS_RESOURCE.
# A container or sandbox without it (this project's CI machines: hard limit
# 20 000, the capability dropped from the bounding set) cannot get it in any
# namespace of its kernel, and qemu there runs under TCG only. A UML kernel
# is an ordinary process of the host: inside it, root holds every capability
# and its file limits, sockets and loopback are its own, while the code runs
# at the host's speed (system calls and page faults trap to the host, which
# is what makes it slower: 4 000 TLS connections took 66 s on 2026-12-04).
# One CPU: UML has no SMP.
#
# UML_MEM (MiB): the guest's memory, 2 GiB by default; its backing file is
# sparse, in /dev/shm where that has room. UML_TIMEOUT (seconds, 3600): the
# whole run's bound, after which the kernel is killed.
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: uml.sh COMMAND [ARG ...]" >&2; exit 64; }
here=$(cd "$(dirname "$0")" && pwd)
bash "$here/../../setup/apt-ensure.sh" linux.uml:user-mode-linux

mem=${UML_MEM:-2048}
run=$(mktemp -d /tmp/sipedge-uml.XXXXXX)
uml=
# Killed or interrupted, the kernel goes too (timeout puts it in a process group of its own, out of reach of a
# terminal's Ctrl-C): left behind, it would hold its memory and connections until UML_TIMEOUT.
trap 'if [ -n "$uml" ]; then kill -TERM "$uml" 2>/dev/null || true; wait || true; fi; rm -rf "$run"' EXIT
trap 'exit 130' INT TERM HUP
# The init process: what a minimal boot needs, then COMMAND, then power off.
{
  echo '#!/bin/bash'
  # The root is this machine's own file system: without the guest's /proc mounted, the power-off below
  # would write to the host's sysrq trigger. An init that exits instead ends the kernel (a panic).
  echo 'mount -t proc proc /proc && mountpoint -q /proc || exit 1'
  echo 'mount -t sysfs sys /sys; ip link set lo up'
  echo 'export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root SIPEDGE_IN_UML=1'
  while IFS= read -r name; do printf 'export %s=%q\n' "$name" "${!name}"; done < <(compgen -e | grep '^BENCH_' || true)
  printf 'cd %q || exit 1\n' "$PWD"
  printf '%q ' "$@"
  printf '>%q 2>&1\n' "$run/out"
  printf 'echo $? >%q\n' "$run/status"
  echo 'echo o >/proc/sysrq-trigger'
} >"$run/init"
chmod +x "$run/init"
: >"$run/out"

# Each guest page a process touches is a mapping of the kernel's memory file in that process's host
# twin: past vm.max_map_count (65 530 by default) UML "ran out of memory on the host side" and the
# guest process died (sipedge at about 1 GiB with 50 000 connections coming up, 2026-12-04). One mapping
# a page of guest memory at most: a guest of under 256 MiB needs no raise.
maps=$((mem * 256))
if [ "$(cat /proc/sys/vm/max_map_count)" -lt "$maps" ]; then
  sysctl -qw "vm.max_map_count=$maps" || echo "uml.sh: cannot raise vm.max_map_count to $maps: a guest process may die once it maps that many pages" >&2
fi

shm=$(df --output=avail -m /dev/shm 2>/dev/null | tail -1 || echo 0)
tmp=/tmp
[ "${shm// /}" -gt $((mem + 1024)) ] 2>/dev/null && tmp=/dev/shm
# The console (the kernel's own messages) goes to a file; COMMAND's output is followed as it comes.
TMPDIR=$tmp timeout -s KILL "${UML_TIMEOUT:-3600}" linux.uml "mem=${mem}M" rootfstype=hostfs rootflags=/ rw \
  "init=$run/init" con=null con0=fd:0,fd:1 </dev/null >"$run/console" 2>&1 &
uml=$!
tail -f --pid="$uml" "$run/out" &
# The kernel sometimes ends on SIGABRT after the power-off COMMAND asked for: its status is not ours.
{ wait "$uml"; } 2>/dev/null || true
wait
if [ ! -s "$run/status" ]; then
  echo "uml.sh: the UML kernel ended before COMMAND did; its console's end:" >&2
  tail -20 "$run/console" >&2
  exit 70
fi
exit "$(cat "$run/status")"

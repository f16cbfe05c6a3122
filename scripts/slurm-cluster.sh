#!/usr/bin/env bash
# A real one-node SLURM cluster on this machine, for tests and CI (issue #14): this host is the
# only node, jobs go through the real sbatch/slurmctld/slurmd path, so `benchrun -m
# hydra/launcher=...` can be tested end to end without a site cluster.
#
#   bash scripts/slurm-cluster.sh start    # install (root, apt-get) if missing, configure, start, wait for idle
#   bash scripts/slurm-cluster.sh stop     # cancel jobs, stop the daemons this script started
#   bash scripts/slurm-cluster.sh status   # one line
#   eval "$(bash scripts/slurm-cluster.sh env)"   # SLURM_CONF, and PATH with a sacct that works here
#
# Everything (slurm.conf, munge key and socket, state, spool, logs, pid files) lives in one
# directory, $BENCHRUN_SLURM_DIR (default /tmp/benchrun-slurm), so nothing under /etc/slurm or
# /etc/munge is used or changed. Clients find the cluster through SLURM_CONF, which `env`
# prints (sbatch passes it on to the jobs). Daemons run in the background, not under
# systemd, with plugins that need neither cgroups nor systemd, so it works in a container.
set -euo pipefail

dir=${BENCHRUN_SLURM_DIR:-/tmp/benchrun-slurm}
ctld_port=${BENCHRUN_SLURM_CTLD_PORT:-6817}
slurmd_port=${BENCHRUN_SLURM_SLURMD_PORT:-6818}
conf=$dir/slurm.conf
export SLURM_CONF=$conf
packages=(munge slurmctld slurmd slurm-client)

die() { echo "slurm-cluster: $*" >&2; exit 1; }

pid_of() {  # the pid in $dir/NAME.pid if that process is alive and is NAME (not a reused pid)
  local f=$dir/$1.pid pid
  [ -s "$f" ] || return 1
  pid=$(cat "$f")
  # /proc, not kill -0: a normal user's `status` must see root's daemons too.
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ] && echo "$pid"
}

node_state() { sinfo -h -N -o '%t' 2>/dev/null | head -n1; }

install_packages() {
  local missing=() p
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || die "packages missing (${missing[*]}); run as root or: apt-get install ${missing[*]}"
  # The packages' maintainer scripts would start munge/slurm through init scripts with the
  # /etc defaults; policy-rc.d exit 101 forbids that for the duration of the install.
  local policy=/usr/sbin/policy-rc.d had_policy=0
  [ -e "$policy" ] && had_policy=1
  [ $had_policy = 1 ] || { printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; }
  local log=/tmp/slurm-cluster-apt.$$.log
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing[@]}"; } >"$log" 2>&1 \
    || { [ $had_policy = 1 ] || rm -f "$policy"; tail -n 5 "$log" >&2; die "apt-get install ${missing[*]} failed"; }
  rm -f "$log"
  [ $had_policy = 1 ] || rm -f "$policy"
}

write_config() {
  local host cpus mem_mb i gres="" fake_gpus=${BENCHRUN_SLURM_FAKE_GPUS:-0}
  [ "$fake_gpus" -gt 0 ] 2>/dev/null && gres=gpu:$fake_gpus
  host=$(hostname -s)
  cpus=$(nproc)
  # RealMemory above what slurmd measures drains the node; leave 10% (at least 512 MB) spare.
  mem_mb=$(awk '/^MemTotal:/ {m=int($2/1024); s=int(m/10); if (s<512) s=512; print m-s}' /proc/meminfo)
  mkdir -p "$dir"/{state,spool,log,munge}
  # munged refuses a key or socket dir that others can write; others must reach the socket.
  chmod 755 "$dir" "$dir/munge"
  cat >"$conf" <<EOF
# Written by scripts/slurm-cluster.sh: one node (this host), one partition, no accounting daemon.
ClusterName=benchrun
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
# No cgroups or systemd in a container: plain /proc process tracking, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
SwitchType=switch/none
# No slurmdbd: sacct cannot answer; finished jobs are logged one line each to a text file.
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.txt
SchedulerType=sched/backfill
# Cores (not whole nodes) are the unit, so several 1-CPU jobs share the node.
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
# A job the node can never run (too many CPUs, too much memory) is refused at sbatch instead of
# pending forever, which would hang a test.
EnforcePartLimits=ALL
# Quick scheduling and clean-up: tests wait on these. Finished jobs stay visible to squeue
# (and so to bin/sacct) for an hour.
SchedulerParameters=sched_interval=2
MessageTimeout=10
KillWait=5
MinJobAge=3600
SlurmdTimeout=60
InactiveLimit=0
${gres:+GresTypes=gpu}
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb${gres:+ Gres=$gres} State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  # BENCHRUN_SLURM_FAKE_GPUS=N: N pretend GPUs (/dev/null), so a GPU preset's --gpus-per-node is
  # accepted and scheduled as on a GPU cluster; the jobs get CUDA_VISIBLE_DEVICES but no GPU.
  rm -f "$dir/gres.conf"
  if [ -n "$gres" ]; then
    for ((i = 0; i < fake_gpus; i++)); do echo "NodeName=$host Name=gpu File=/dev/null"; done >"$dir/gres.conf"
  fi
  # Without slurmdbd plain `sacct` fails ("accounting storage is disabled"), and submitit polls
  # job states with `sacct -o JobID,State,NodeList --parsable2 -j ID...`: with no answer it never
  # learns that a job died without a result (cancelled, timed out) and waits forever. This sacct
  # answers that query from the controller, which keeps finished jobs for MinJobAge. (`sacct
  # --completion` reads jobcomp.txt but loses array task ids, and submitit submits arrays.)
  # Put $dir/bin first on PATH to use it (`env` prints the line).
  mkdir -p "$dir/bin"
  cat >"$dir/bin/sacct" <<'SACCT'
#!/bin/sh
# Written by scripts/slurm-cluster.sh: answers submitit's sacct query from squeue (no slurmdbd).
# Prints JobID|State|NodeList whatever -o asks for.
jobs=
while [ $# -gt 0 ]; do
  case $1 in
    -j|--jobs) jobs=${jobs:+$jobs,}${2:-}; [ $# -gt 1 ] && shift ;;
    --jobs=*) jobs=${jobs:+$jobs,}${1#--jobs=} ;;
  esac
  shift
done
echo 'JobID|State|NodeList'
exec squeue --states=all --noheader --format='%i|%T|%N' ${jobs:+--jobs="$jobs"}
SACCT
  chmod 755 "$dir/bin" "$dir/bin/sacct"
  # munged wants a key readable by its user only.
  if [ ! -s "$dir/munge/munge.key" ]; then
    (umask 077; dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none)
  fi
  chmod 400 "$dir/munge/munge.key"
}

port_free() { ! ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

start() {
  if pid_of slurmctld >/dev/null && pid_of slurmd >/dev/null && pid_of munged >/dev/null; then
    echo "slurm-cluster: already running ($(status_line))"
    return 0
  fi
  local t0
  t0=$(date +%s.%N)
  install_packages
  # A half-started cluster (one daemon died) is stopped first, so start always begins clean.
  stop >/dev/null 2>&1 || true
  [ "$(id -u)" = 0 ] || die "start must run as root (slurmd runs jobs as their users)"
  local p
  for p in "$ctld_port" "$slurmd_port"; do
    port_free "$p" || die "port $p is in use (set BENCHRUN_SLURM_CTLD_PORT / BENCHRUN_SLURM_SLURMD_PORT)"
  done
  write_config
  # Fresh state every start: jobs or a drained node from an earlier run must not come back.
  rm -rf "${dir:?}/state" "${dir:?}/spool" && mkdir -p "$dir/state" "$dir/spool"
  : >"$dir/log/jobcomp.txt"
  # --force: munged as root (no munge user needed); all its files in our own directory.
  munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
    --pid-file="$dir/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munge.seed"
  slurmctld -f "$conf"
  slurmd -f "$conf"
  local deadline=$((SECONDS + ${BENCHRUN_SLURM_TIMEOUT:-60})) state=""
  while [ $SECONDS -lt $deadline ]; do
    state=$(node_state)
    [ "$state" = idle ] && break
    sleep 0.5
  done
  if [ "$state" != idle ]; then
    echo "slurm-cluster: node not idle after ${BENCHRUN_SLURM_TIMEOUT:-60}s (state: ${state:-none}); logs in $dir/log" >&2
    tail -n 5 "$dir"/log/*.log >&2 || true
    stop >/dev/null 2>&1 || true
    exit 1
  fi
  echo "slurm-cluster: up in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')s; use it with: $(env_lines | paste -sd';')"
}

stop_daemons() {  # TERM the named daemons together, wait up to 10 s, then KILL what is left
  local d pid pids=()
  for d in "$@"; do
    pid=$(pid_of "$d") && { pids+=("$pid"); stopped+=("$d"); kill -TERM "$pid" 2>/dev/null || true; }
  done
  for _ in $(seq 50); do
    pid=""
    for d in "${pids[@]}"; do kill -0 "$d" 2>/dev/null && pid=$d; done
    [ -z "$pid" ] && break
    sleep 0.2
  done
  for d in "${pids[@]}"; do kill -KILL "$d" 2>/dev/null || true; done
}

stop() {
  # Cancel our cluster's jobs first so no slurmstepd or job process outlives the daemons.
  if pid_of slurmctld >/dev/null && [ -n "$(squeue -h -o %i 2>/dev/null)" ]; then
    scancel --partition=debug 2>/dev/null || true
    for _ in $(seq 20); do [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break; sleep 0.5; done
  fi
  local stopped=()
  # Slurm before munge: the daemons still authenticate their last messages.
  stop_daemons slurmd slurmctld
  stop_daemons munged
  rm -f "$dir"/{slurmd,slurmctld,munged}.pid
  echo "slurm-cluster: stopped ${stopped[*]:-nothing}"
}

status_line() {
  local d up=() down=()
  for d in munged slurmctld slurmd; do
    if pid_of "$d" >/dev/null; then up+=("$d"); else down+=("$d"); fi
  done
  if [ ${#down[@]} -eq 0 ]; then
    echo "running: node $(hostname -s) $(node_state || true), $(squeue -h 2>/dev/null | wc -l) jobs, SLURM_CONF=$conf"
  elif [ ${#up[@]} -eq 0 ]; then
    echo "stopped"
  else
    echo "partial: up ${up[*]}, down ${down[*]}"
  fi
}

env_lines() {  # for eval: the cluster's config, and the sacct that works without slurmdbd
  echo "export SLURM_CONF=$conf"
  echo "export PATH=$dir/bin:\$PATH"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status_line ;;
  env) env_lines ;;
  *) die "usage: $0 start|stop|status|env" ;;
esac

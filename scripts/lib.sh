# shellcheck shell=bash
# Shell helpers shared by the development scripts (scripts/*.sh) and the
# benchmarks (bench/lib.sh sources this file): the build step, stopping the
# processes a script started, the landmarkd and chipagent config files, and
# playwright-core for the dashboard's browser test and screenshot.
# Sourced, never run. Every helper returns non-zero on failure, so a caller
# under `set -e` stops there.

chiploc_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# build_tree [-v] DIR [-DNAME=VALUE...] [TARGET...]: configures the source
# tree into the build directory DIR (RelWithDebInfo unless a
# -DCMAKE_BUILD_TYPE=... says otherwise; every -D argument goes to the
# configure step) and builds TARGETs, or everything when none is named, with
# one job per core. The configure step is silent; the build's progress lines
# are shown only with -v (errors and warnings, on stderr, always are).
# Environment such as CC=clang passes through to cmake.
build_tree() {
  local verbose=0
  if [ "${1:-}" = -v ]; then
    verbose=1
    shift
  fi
  local dir=${1:?usage: build_tree [-v] DIR [-DNAME=VALUE...] [TARGET...]}
  shift
  local -a defs=(-DCMAKE_BUILD_TYPE=RelWithDebInfo) targets=()
  local a
  for a in "$@"; do
    case $a in
      -D*) defs+=("$a") ;;
      *) targets+=("$a") ;;
    esac
  done
  if [ ${#targets[@]} -gt 0 ]; then targets=(--target "${targets[@]}"); fi
  cmake -S "$chiploc_root" -B "$dir" "${defs[@]}" >/dev/null
  if [ "$verbose" = 1 ]; then
    cmake --build "$dir" -j"$(nproc)" "${targets[@]}"
  else
    cmake --build "$dir" -j"$(nproc)" "${targets[@]}" >/dev/null
  fi
}

# The processes a script started in the background, oldest first: append
# each one's $! and stop_all stops them.
pids=()

# stop_all: sends SIGTERM to every process in pids, newest first (the
# clients before the servers they talk to), then waits for each, and empties
# pids. A process that has already exited is no error.
stop_all() {
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM "${pids[$i]}" 2>/dev/null || true; done
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do wait "${pids[$i]}" 2>/dev/null || true; done
  pids=()
}

# ini_print SECTION.KEY=VALUE...: prints INI text. Sections come in the order
# they are first named, keys in the order given, one blank line between
# sections. SECTION is what comes before the last dot of the name, so
# landmark.paris.address=... is the key address of [landmark.paris].
ini_print() {
  local -a order=()
  local a name s seen first=1
  for a in "$@"; do
    name=${a%%=*}
    if [ "$name" = "$a" ] || [[ ! $name =~ ^[A-Za-z0-9_.-]+\.[a-z_]+$ ]] || [[ $a == *$'\n'* ]]; then
      echo "ini_print: '$a' is not SECTION.KEY=VALUE on one line" >&2
      return 2
    fi
    seen=0
    for s in "${order[@]}"; do
      if [ "$s" = "${name%.*}" ]; then seen=1; break; fi
    done
    if [ "$seen" = 0 ]; then order+=("${name%.*}"); fi
  done
  for s in "${order[@]}"; do
    if [ "$first" = 0 ]; then printf '\n'; fi
    first=0
    printf '[%s]\n' "$s"
    for a in "$@"; do
      name=${a%%=*}
      if [ "${name%.*}" = "$s" ]; then printf '%s = %s\n' "${name##*.}" "${a#*=}"; fi
    done
  done
}

# landmarkd_conf FILE NAME KEY LISTEN LAT LON CONNINFO [SECTION.KEY=VALUE...]:
# writes a landmarkd config (docs/CONFIG.md) to FILE: [landmark] with name,
# key (a path relative to FILE's directory, or absolute), listen, lat and
# lon; [database] with conninfo; then the further settings, e.g.
# probe.interval_s=5 limits.idle_timeout_s=60 metrics.listen=127.0.0.1:9100.
landmarkd_conf() {
  if [ $# -lt 7 ]; then
    echo "usage: landmarkd_conf FILE NAME KEY LISTEN LAT LON CONNINFO [SECTION.KEY=VALUE...]" >&2
    return 2
  fi
  local file=$1
  shift
  ini_print "landmark.name=$1" "landmark.key=$2" "landmark.listen=$3" "landmark.lat=$4" \
    "landmark.lon=$5" "database.conninfo=$6" "${@:7}" >"$file"
}

# chipagent_conf FILE NAME [SECTION.KEY=VALUE...]: writes a chipagent config
# (docs/CONFIG.md) to FILE: [agent] with name, then the further settings,
# e.g. agent.backoff_min_ms=200, landmark.paris.address=127.0.0.1:27600,
# landmark.paris.public_key=HEX, chip.c0.key=keys/c0.key.
chipagent_conf() {
  if [ $# -lt 2 ]; then
    echo "usage: chipagent_conf FILE NAME [SECTION.KEY=VALUE...]" >&2
    return 2
  fi
  local file=$1
  shift
  ini_print "agent.name=$1" "${@:2}" >"$file"
}

# playwright_core BUILD_DIR: installs playwright-core, the pinned version, from
# npm into BUILD_DIR/node_modules unless it is there. It drives Debian's
# chromium (/usr/bin/chromium): it has no install script and downloads no
# browser. 1.61 is the newest that runs on Debian 12's Node 18. Prints npm's
# output and returns non-zero when the install fails.
PLAYWRIGHT_CORE=1.61.1
playwright_core() {
  local build=$1 installed
  installed=$(node -p 'JSON.parse(require("fs").readFileSync(process.argv[1])).version' \
    "$build/node_modules/playwright-core/package.json" 2>/dev/null || true)
  [ "$installed" = "$PLAYWRIGHT_CORE" ] && return 0
  # --no-save: no package.json or lock file in the build tree.
  npm install --no-save --no-audit --no-fund --prefix "$build" "playwright-core@$PLAYWRIGHT_CORE" \
    >"$build/playwright-install.log" 2>&1 || { cat "$build/playwright-install.log"; return 1; }
}

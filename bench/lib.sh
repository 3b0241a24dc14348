# Shell functions the bench scripts share (sourced, not run).

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Stops one server we started (by its pid): SIGTERM, then SIGKILL after 5 s.
stop() {
    local pid="$1"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# Converts a wrk duration (10, 10s, 2m, 1h) to whole seconds, for bounding runs with `timeout`.
seconds() {
    local d="$1"
    case "$d" in
        *h) echo $((${d%h} * 3600)) ;;
        *m) echo $((${d%m} * 60)) ;;
        *s) echo "${d%s}" ;;
        *) echo "$d" ;;
    esac
}

apt_install() {
    local sudo=""
    [[ "$(id -u)" -eq 0 ]] || sudo="sudo"
    # Refresh the package lists only when the package is not found with the current ones.
    $sudo apt-get install -y "$@" || { $sudo apt-get update && $sudo apt-get install -y "$@"; }
}

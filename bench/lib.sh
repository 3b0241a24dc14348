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

# Installs whichever of the Debian packages named like their commands ($@) is missing, and
# insists on curl.
ensure_tools() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { log "installing $tool"; apt_install "$tool"; }
    done
    command -v curl >/dev/null || die "curl is required"
}

# Builds the release binaries of the packages $@ (unless SKIP_BUILD=1) and checks they exist
# in $TARGET_DIR/release.
build_release() {
    local package
    if [[ "${SKIP_BUILD:-0}" == 1 ]]; then
        log "SKIP_BUILD=1: using the binaries in $TARGET_DIR/release"
    else
        log "building $* (release)"
        (cd "$ROOT" && cargo build --release "${@/#/--package=}")
    fi
    for package in "$@"; do
        [[ -x "$TARGET_DIR/release/$package" ]] || die "no $TARGET_DIR/release/$package"
    done
}

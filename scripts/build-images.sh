#!/usr/bin/env bash
# Build static binaries and the scratch Docker images used by demos and tests:
#   pointsman-demo:dev     images/demo/Dockerfile       (src/bin/pointsman-demo.rs)
#   pointsman-traefik:dev  images/traefik/Dockerfile    (traefik from scripts/install-traefik.sh)
#   pointsman:dev          images/pointsman/Dockerfile.ci  (only if the pointsman binary was built)
#   pointsman-redis:dev    images/redis/Dockerfile      (Debian's redis-server and its libraries;
#                                                        only if redis-server is installed)
#
# These are the images CI and the tests use (tests/compose.rs runs traefik/compose.yml and
# traefik/redis/compose.yml on them).
# Users build pointsman and the demo with the multi-stage images/pointsman/Dockerfile instead
# (`docker compose up --build` in traefik/), which needs to pull the Rust image; its final stages
# match Dockerfile.ci and images/demo/Dockerfile.
#
# Nothing can be pulled here, so every image is FROM scratch: one static binary each, except Redis,
# which is Debian's dynamically linked build with its libraries copied in. Binaries are
# built with glibc's static CRT into target/static (a target dir of its own, so this never
# invalidates the normal debug/test build). Each image is built from a small temporary context
# (Dockerfile + binary + empty tmp/), never from the repository, and is skipped when an image with
# the same input fingerprint (label io.pointsman.build-fingerprint) already exists, so a second run
# with nothing changed takes about a second.
#
# Env:
#   BINS="pointsman-demo pointsman"   binaries to build (e.g. BINS=pointsman-demo for just the demo)
#   IMAGES="demo traefik pointsman redis"  images to build (default: demo, traefik, pointsman when
#                                     its binary is built, redis when redis-server is installed)
#   TAG=dev                           image tag
#   FORCE=1                           rebuild images even if their fingerprint matches
#   DOCKER_BUILDKIT                   default 0 (the classic builder; no buildx plugin here)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

BINS="${BINS:-pointsman-demo pointsman}"
TAG="${TAG:-dev}"
FORCE="${FORCE:-0}"
export DOCKER_BUILDKIT="${DOCKER_BUILDKIT:-0}"
triple=x86_64-unknown-linux-gnu
target_dir="$root/target/static"
release_dir="$target_dir/$triple/release"
ctx_root="$target_dir/docker-context"

log() { echo "build-images: $*" >&2; }
die() { log "error: $*"; exit 2; }

# ---- binaries ----------------------------------------------------------------------------------
bin_args=()
for b in $BINS; do bin_args+=(--bin "$b"); done
if [ ${#bin_args[@]} -gt 0 ]; then
    log "cargo build --release (static) ${bin_args[*]}"
    RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
        cargo build --release --target "$triple" --target-dir "$target_dir" "${bin_args[@]}"
fi

assert_static() {
    local desc
    desc="$(file -L "$1")"
    case "$desc" in
        *"dynamically linked"*) die "$1 is dynamically linked: $desc" ;;
        *"statically linked"* | *"static-pie linked"*) ;;
        *) die "cannot tell whether $1 is static: $desc" ;;
    esac
}

# ---- images ------------------------------------------------------------------------------------
# up_to_date IMAGE FINGERPRINT: true when IMAGE exists with that input fingerprint (label
# io.pointsman.build-fingerprint) and FORCE is not 1.
up_to_date() {
    local current
    current="$(docker image inspect -f '{{ index .Config.Labels "io.pointsman.build-fingerprint" }}' "$1" 2>/dev/null || true)"
    [ "$FORCE" != 1 ] && [ "$current" = "$2" ]
}

# new_context IMAGE: a fresh build context (with an empty tmp/, mode 1777); prints its path.
new_context() {
    mkdir -p "$ctx_root"
    local ctx
    ctx="$(mktemp -d "$ctx_root/${1%%:*}.XXXXXX")"
    mkdir "$ctx/tmp"
    chmod 1777 "$ctx/tmp"
    echo "$ctx"
}

# build_context IMAGE FINGERPRINT CTX: docker build CTX as IMAGE, labelled with FINGERPRINT;
# removes CTX.
build_context() {
    local image="$1" fp="$2" ctx="$3"
    log "docker build $image ($(du -sh "$ctx" | cut -f1) context)"
    local out old_id
    old_id="$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)"
    if ! out="$(docker build -q --label "io.pointsman.build-fingerprint=$fp" -t "$image" "$ctx" 2>&1)"; then
        echo "$out" >&2
        rm -rf "$ctx"
        die "docker build $image failed"
    fi
    rm -rf "$ctx"
    # Remove the image this one replaced if nothing else names it (no dangling <none> pile-up);
    # rmi without -f also refuses while a container still uses it.
    if [ -n "$old_id" ] && [ "$(docker image inspect -f '{{len .RepoTags}}' "$old_id" 2>/dev/null)" = 0 ]; then
        docker rmi "$old_id" >/dev/null 2>&1 || true
    fi
    log "built $image: $(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.1f MB", $1/1e6}')"
}

# build_image NAME DOCKERFILE BINARY_PATH NAME_IN_CONTEXT: an image of one static binary.
build_image() {
    local image="$1" dockerfile="$2" binary="$3" name="$4"
    assert_static "$binary"
    local fp
    fp="$( (cat "$dockerfile"; sha256sum <"$binary") | sha256sum | cut -c1-32)"
    if up_to_date "$image" "$fp"; then
        log "$image is up to date"
        return
    fi
    local ctx
    ctx="$(new_context "$image")"
    cp "$dockerfile" "$ctx/Dockerfile"
    # A hard link avoids copying traefik's ~180 MB; fall back to a copy across filesystems.
    ln -f "$(readlink -f "$binary")" "$ctx/$name" 2>/dev/null || cp "$binary" "$ctx/$name"
    build_context "$image" "$fp" "$ctx"
}

# build_redis_image NAME: Debian's redis-server and redis-cli with the shared libraries ldd lists,
# each at the path ldd resolved it to, and images/redis/redis.conf (images/redis/Dockerfile).
# The fingerprint covers the Dockerfile, the config and every file's destination and contents,
# so a Debian update of redis or of a library rebuilds the image.
build_redis_image() {
    local image="$1" server cli
    # /usr/bin/redis-server is a symlink (to redis-check-rdb, the same binary); redis picks its
    # mode from the name it is run as, so the file goes in as redis-server.
    server="$(readlink -f "$(command -v redis-server)")"
    cli="$(readlink -f "$(command -v redis-cli)")"
    # "DESTINATION SOURCE" lines: the binaries, then each library once.
    local files
    files="$(
        echo "/usr/bin/redis-server $server"
        echo "/usr/bin/redis-cli $cli"
        for bin in "$server" "$cli"; do ldd "$bin"; done | awk '
            $2 == "=>" && $3 ~ /^\// { print $3 }
            $1 ~ /^\// { print $1 }' | sort -u | while read -r lib; do
            echo "$lib $(readlink -f "$lib")"
        done
    )"
    local fp
    fp="$( (cat images/redis/Dockerfile images/redis/redis.conf
            while read -r dest src; do echo "$dest $(sha256sum <"$src")"; done <<<"$files") |
        sha256sum | cut -c1-32)"
    if up_to_date "$image" "$fp"; then
        log "$image is up to date"
        return
    fi
    local ctx
    ctx="$(new_context "$image")"
    cp images/redis/Dockerfile "$ctx/Dockerfile"
    mkdir -p "$ctx/rootfs/etc/redis" "$ctx/rootfs/data"
    mv "$ctx/tmp" "$ctx/rootfs/tmp"
    cp images/redis/redis.conf "$ctx/rootfs/etc/redis/redis.conf"
    while read -r dest src; do
        mkdir -p "$ctx/rootfs$(dirname "$dest")"
        cp "$src" "$ctx/rootfs$dest"
    done <<<"$files"
    build_context "$image" "$fp" "$ctx"
}

want_image() { [ -z "${IMAGES:-}" ] || [[ " $IMAGES " == *" $1 "* ]]; }

docker info >/dev/null 2>&1 || die "docker is not reachable (docker info failed)"

if want_image demo; then
    bin="$release_dir/pointsman-demo"
    [ -x "$bin" ] || die "$bin missing (is pointsman-demo in BINS?)"
    build_image "pointsman-demo:$TAG" images/demo/Dockerfile "$bin" pointsman-demo
fi

if want_image traefik; then
    traefik="$("$root/scripts/install-traefik.sh" | tail -n 1)"
    build_image "pointsman-traefik:$TAG" images/traefik/Dockerfile "$traefik" traefik
fi

if want_image pointsman; then
    bin="$release_dir/pointsman"
    if [[ " $BINS " == *" pointsman "* ]] && [ -x "$bin" ]; then
        build_image "pointsman:$TAG" images/pointsman/Dockerfile.ci "$bin" pointsman
    elif [ -n "${IMAGES:-}" ]; then
        die "pointsman:$TAG requested but pointsman is not in BINS or $bin is missing"
    else
        log "skipping pointsman:$TAG (pointsman not in BINS)"
    fi
fi

if want_image redis; then
    if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
        build_redis_image "pointsman-redis:$TAG"
    elif [ -n "${IMAGES:-}" ]; then
        die "pointsman-redis:$TAG requested but redis-server is not installed (apt-get install redis-server)"
    else
        log "skipping pointsman-redis:$TAG (no redis-server here; apt-get install redis-server)"
    fi
fi

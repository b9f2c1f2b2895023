#!/usr/bin/env bash
# Build static binaries and the scratch Docker images used by demos and tests:
#   pointsman-demo:dev     images/demo/Dockerfile       (src/bin/pointsman-demo.rs)
#   pointsman-traefik:dev  images/traefik/Dockerfile    (traefik from scripts/install-traefik.sh)
#   pointsman:dev          images/pointsman/Dockerfile.ci  (only if the pointsman binary was built)
#
# These are the images CI and the tests use (tests/compose.rs runs traefik/compose.yml on them).
# Users build pointsman and the demo with the multi-stage images/pointsman/Dockerfile instead
# (`docker compose up --build` in traefik/), which needs to pull the Rust image; its final stages
# match Dockerfile.ci and images/demo/Dockerfile.
#
# Nothing can be pulled here, so every image is FROM scratch with one static binary. Binaries are
# built with glibc's static CRT into target/static (a target dir of its own, so this never
# invalidates the normal debug/test build). Each image is built from a small temporary context
# (Dockerfile + binary + empty tmp/), never from the repository, and is skipped when an image with
# the same input fingerprint (label io.pointsman.build-fingerprint) already exists, so a second run
# with nothing changed takes about a second.
#
# Env:
#   BINS="pointsman-demo pointsman"   binaries to build (e.g. BINS=pointsman-demo for just the demo)
#   IMAGES="demo traefik pointsman"   images to build (default: demo, traefik, and pointsman when
#                                     its binary is built)
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
# build_image NAME DOCKERFILE BINARY_PATH NAME_IN_CONTEXT
build_image() {
    local image="$1" dockerfile="$2" binary="$3" name="$4"
    assert_static "$binary"
    local fp current
    fp="$( (cat "$dockerfile"; sha256sum <"$binary") | sha256sum | cut -c1-32)"
    current="$(docker image inspect -f '{{ index .Config.Labels "io.pointsman.build-fingerprint" }}' "$image" 2>/dev/null || true)"
    if [ "$FORCE" != 1 ] && [ "$current" = "$fp" ]; then
        log "$image is up to date"
        return
    fi
    mkdir -p "$ctx_root"
    local ctx
    ctx="$(mktemp -d "$ctx_root/${image%%:*}.XXXXXX")"
    mkdir "$ctx/tmp"
    chmod 1777 "$ctx/tmp"
    cp "$dockerfile" "$ctx/Dockerfile"
    # A hard link avoids copying traefik's ~180 MB; fall back to a copy across filesystems.
    ln -f "$(readlink -f "$binary")" "$ctx/$name" 2>/dev/null || cp "$binary" "$ctx/$name"
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

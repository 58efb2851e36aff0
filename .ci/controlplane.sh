#!/usr/bin/env bash
# Builds the real Kubernetes control plane that tests/kube/ runs (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kubectl) from the Go wrapper modules in k8s/controlplane/,
# into a cache outside the clone, and only the programs that are missing there. .ci/run calls it;
# developers run it once (`bash .ci/controlplane.sh`), then `./dev test` runs tests/kube/ too.
#
# STRATUS_K8S_BIN overrides the cache directory; the default is keyed by the pinned versions, so a
# version bump builds into a fresh directory. Prints the directory on the last line.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The wrapper modules' go.mod files are the one place the versions are pinned (tests/kube reads them too).
KUBE_VERSION="$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" {print $3}' k8s/controlplane/kubernetes/go.mod)"
ETCD_VERSION="$(awk '$1 == "go.etcd.io/etcd/server/v3" {print $2}' k8s/controlplane/etcd/go.mod)"
BIN="${STRATUS_K8S_BIN:-$HOME/.cache/stratus-k8s/$KUBE_VERSION-etcd-$ETCD_VERSION}"
KUBE_CMDS=(kube-apiserver kube-controller-manager kube-scheduler kubectl)

if ! command -v go >/dev/null; then
    echo "controlplane.sh: Go is not installed; tests/kube/ needs Go >= 1.26 to build the control plane" >&2
    exit 1
fi
# A go.mod never silently pulls a newer toolchain: a module that needs one fails loudly instead.
export GOTOOLCHAIN=local CGO_ENABLED=0
mkdir -p "$BIN"
# Go caches compiled packages, but on 2 shared cores the cold build takes long: be a polite neighbour.
go_build() { nice -n 10 go build -trimpath "$@"; }

missing=()
for cmd in "${KUBE_CMDS[@]}"; do
    [[ -x "$BIN/$cmd" ]] || missing+=("$cmd")
done
if ((${#missing[@]})); then
    # The binaries report their real version (kubectl and the client's version checks read it).
    vpkg=k8s.io/component-base/version
    minor="${KUBE_VERSION#v1.}"
    minor="${minor%%.*}"
    ldflags="-s -w -X $vpkg.gitVersion=$KUBE_VERSION -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=$minor"
    ldflags+=" -X $vpkg.gitTreeState=clean -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION"
    start=$SECONDS
    tmp="$(mktemp -d "$BIN/.build.XXXXXX")"
    pkgs=()
    for cmd in "${missing[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$cmd"); done
    (cd k8s/controlplane/kubernetes && go_build -ldflags "$ldflags" -o "$tmp/" "${pkgs[@]}")
    # Move into place only once built, so an interrupted build never leaves a half-written program.
    mv "$tmp"/* "$BIN/" && rmdir "$tmp"
    echo "controlplane.sh: built ${missing[*]} in $((SECONDS - start)) s" >&2
fi
if [[ ! -x "$BIN/etcd" ]]; then
    start=$SECONDS
    (cd k8s/controlplane/etcd && go_build -ldflags "-s -w" -o "$BIN/etcd.tmp" go.etcd.io/etcd/server/v3)
    mv "$BIN/etcd.tmp" "$BIN/etcd"
    echo "controlplane.sh: built etcd in $((SECONDS - start)) s" >&2
fi
echo "$BIN"

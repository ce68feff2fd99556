#!/usr/bin/env bash
# Builds the binaries the Kubernetes tests and `make chart-check` need, from the Go module proxy, into a cache
# directory outside the clone (so every clone on the machine shares them): etcd, kube-apiserver,
# kube-controller-manager (and helm with `k8s-bins.sh helm`). A binary is rebuilt only when it is missing.
# See /docs/kubernetes.md and the recipe this follows: release binaries cannot be downloaded here, and the
# distribution's etcd is too old for Kubernetes 1.33.
#
# The throwaway modules are generated under $K8S_CACHE/src and never belong to the repository.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.33.13}
ETCD_VERSION=${ETCD_VERSION:-v3.5.35}
HELM_VERSION=${HELM_VERSION:-v3.22.0}
K8S_CACHE=${K8S_CACHE:-$HOME/.cache/dagctl-bot/k8s-$K8S_VERSION}
GO=${GO:-go}
BIN=$K8S_CACHE/bin
SRC=$K8S_CACHE/src

# The throwaway modules must not see the repository's go.work or GOFLAGS meant for it.
export GOWORK=off GOFLAGS=-mod=mod GOTOOLCHAIN=${GOTOOLCHAIN:-local}

mkdir -p "$BIN" "$SRC"
# One builder at a time per cache: a second `make test` waits instead of building the same thing twice.
if command -v flock >/dev/null; then
	exec 9>"$K8S_CACHE/.lock"
	flock 9
fi

built=
# quietly runs a command, showing its output only when it fails.
quietly() {
	local out
	if ! out=$("$@" 2>&1); then
		printf '%s\n' "$out" >&2
		return 1
	fi
}

log() {
	built=1
	printf '[k8s-bins %s] %s\n' "$(date +%T)" "$*" >&2
}

build_etcd() {
	[ -x "$BIN/etcd" ] && return
	log "building etcd $ETCD_VERSION"
	local dir=$SRC/etcd
	rm -rf "$dir" && mkdir -p "$dir"
	cat >"$dir/go.mod" <<MOD
module dagctl.local/etcd-build

go 1.23
MOD
	cat >"$dir/tools.go" <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
	(cd "$dir" && quietly $GO get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" &&
		$GO build -trimpath -ldflags "-s -w" -o "$BIN/etcd.tmp" go.etcd.io/etcd/server/v3)
	mv "$BIN/etcd.tmp" "$BIN/etcd"
}

k8s_module() {
	local dir=$SRC/kubernetes
	[ -f "$dir/go.sum" ] && [ -f "$dir/.ready" ] && return
	log "preparing the module for k8s.io/kubernetes $K8S_VERSION"
	rm -rf "$dir" && mkdir -p "$dir"
	(cd "$dir" && quietly $GO mod download "k8s.io/kubernetes@$K8S_VERSION")
	local modfile
	modfile="$($GO env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/$K8S_VERSION.mod"
	local staging=v0.${K8S_VERSION#v1.}
	{
		echo "module dagctl.local/kubernetes-build"
		echo
		echo "go 1.24.0"
		echo
		echo "godebug default=go1.24"
		echo
		echo "require k8s.io/kubernetes $K8S_VERSION"
		echo
		echo "replace ("
		# Every staging module is required at v0.0.0 and replaced by ./staging/...; use the published one.
		grep -E '=> ./staging' "$modfile" | awk -v v="$staging" '{print "\t"$1" => "$1" "v}'
		echo ")"
	} >"$dir/go.mod"
	cat >"$dir/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
)
GO
	(cd "$dir" && $GO mod tidy -e >/dev/null 2>&1 || true)
	# tidy drops what only the build-tagged tools file needs on some versions; get makes sure both are there.
	(cd "$dir" && quietly $GO get "k8s.io/kubernetes@$K8S_VERSION")
	touch "$dir/.ready"
}

build_k8s() {
	local name=$1
	[ -x "$BIN/$name" ] && return
	k8s_module
	log "building $name $K8S_VERSION"
	local minor=${K8S_VERSION#v1.}
	minor=${minor%%.*}
	# Without the version stamps the server reports v0.0.0-master, which clients cannot parse.
	local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION"
	ldflags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
	(cd "$SRC/kubernetes" && $GO build -trimpath -ldflags "$ldflags" -o "$BIN/$name.tmp" "k8s.io/kubernetes/cmd/$name")
	mv "$BIN/$name.tmp" "$BIN/$name"
}

build_helm() {
	[ -x "$BIN/helm" ] && return
	log "building helm $HELM_VERSION"
	local tmp=$K8S_CACHE/gobin.tmp
	rm -rf "$tmp"
	GOBIN=$tmp $GO install -trimpath -ldflags "-s -w" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
	mv "$tmp/helm" "$BIN/helm"
	rm -rf "$tmp"
}

what=${1:-control-plane}
case $what in
control-plane)
	build_etcd
	build_k8s kube-apiserver
	build_k8s kube-controller-manager
	;;
helm) build_helm ;;
all)
	build_etcd
	build_k8s kube-apiserver
	build_k8s kube-controller-manager
	build_helm
	;;
*)
	echo "usage: $0 [control-plane|helm|all]" >&2
	exit 2
	;;
esac
if [ -n "$built" ]; then
	log "ready in $BIN"
fi

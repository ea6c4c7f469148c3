#!/bin/sh
# Print the -ldflags that stamp the built-in kubectl's client version.
#
#   go build -ldflags "$(./scripts/version-ldflags.sh)" ./cmd/tinykube
#
# Without them `tinykube kubectl version` reports v0.0.0-master and warns
# about version skew against the server. The version is that of the
# k8s.io/kubectl module in go.mod: v0.X.Y is Kubernetes v1.X.Y.
set -eu
cd "$(dirname "$0")/.."
mod=$(go list -m -f '{{.Version}}' k8s.io/kubectl)
case "$mod" in
v0.*.*) ;;
*)
	echo "version-ldflags: unexpected k8s.io/kubectl version $mod" >&2
	exit 1
	;;
esac
rest=${mod#v0.}
minor=${rest%%.*}
version="v1.$rest"
pkg=k8s.io/component-base/version
printf '%s' "-X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"

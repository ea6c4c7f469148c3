// Package images gets container images into the node's containerd: it
// imports OCI and docker-archive tarballs (`tinykube images import`, and
// every tarball in DATA_DIR/agent/images at start) and unpacks them into the
// snapshotter the kubelet runs containers from.
package images

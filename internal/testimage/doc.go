// Package testimage builds small container images as tarballs for tests:
// a static Go HTTP test server and busybox from Debian's busybox-static.
// Images are written as OCI image layouts or docker-archive tarballs, the two
// formats `tinykube images import` and containerd accept, so tests need no
// registry and no network.
package testimage

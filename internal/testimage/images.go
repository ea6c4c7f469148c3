package testimage

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Refs of the images built here, already in the normalized form the kubelet
// looks them up by.
const (
	ServerRef  = "docker.io/tinykube/testserver:v1"
	BusyboxRef = "docker.io/library/busybox:latest"
)

// BusyboxPath is where Debian's busybox-static installs the binary.
const BusyboxPath = "/usr/bin/busybox"

// busyboxApplets get a symlink in /bin.
var busyboxApplets = []string{
	"sh", "cat", "echo", "ls", "sleep", "true", "false", "env", "hostname",
	"id", "mkdir", "rm", "touch", "wget", "nc", "ps", "kill", "date", "test",
	"grep", "head", "tail", "pwd", "printf", "ip", "whoami", "yes",
}

func baseFiles() []File {
	return []File{
		{Path: "bin", Mode: fs.ModeDir | 0o755},
		{Path: "etc", Mode: fs.ModeDir | 0o755},
		{Path: "tmp", Mode: fs.ModeDir | 0o1777},
		{Path: "proc", Mode: fs.ModeDir | 0o755},
		{Path: "sys", Mode: fs.ModeDir | 0o755},
		{Path: "dev", Mode: fs.ModeDir | 0o755},
		{Path: "etc/passwd", Mode: 0o644, Data: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")},
		{Path: "etc/group", Mode: 0o644, Data: []byte("root:x:0:\nnogroup:x:65534:\n")},
	}
}

// Server returns the test HTTP server image (see testserver/main.go), its
// binary compiled statically with the go tool.
func Server() (Image, error) {
	dir, err := os.MkdirTemp("", "testimage-")
	if err != nil {
		return Image{}, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "testserver")
	src, err := sourceDir()
	if err != nil {
		return Image{}, err
	}
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return Image{}, fmt.Errorf("testimage: build test server: %v: %s", err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return Image{}, err
	}
	files := append(baseFiles(), File{Path: "testserver", Mode: 0o755, Data: data})
	return Image{
		Ref:          ServerRef,
		Files:        files,
		Entrypoint:   []string{"/testserver"},
		Env:          []string{"PATH=/bin", "IMAGE_ENV=from-image"},
		ExposedPorts: []string{"8080/tcp"},
	}, nil
}

// Busybox returns an image of Debian's static busybox with the common
// applets linked in /bin and `sh` as its command.
func Busybox() (Image, error) {
	data, err := os.ReadFile(BusyboxPath)
	if err != nil {
		return Image{}, fmt.Errorf("testimage: %w (install busybox-static)", err)
	}
	files := append(baseFiles(), File{Path: "bin/busybox", Mode: 0o755, Data: data})
	for _, a := range busyboxApplets {
		files = append(files, File{Path: "bin/" + a, Mode: fs.ModeSymlink | 0o777, Data: []byte("busybox")})
	}
	return Image{Ref: BusyboxRef, Files: files, Cmd: []string{"sh"}, Env: []string{"PATH=/bin"}}, nil
}

// sourceDir finds testserver/ next to this file through the go tool, which
// works from any test's working directory inside the module.
func sourceDir() (string, error) {
	out, err := exec.Command("go", "list", "-f", "{{.Dir}}", "github.com/tinykube/tinykube/internal/testimage/testserver").Output()
	if err != nil {
		return "", fmt.Errorf("testimage: locate testserver source: %w", err)
	}
	return string(trimNL(out)), nil
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// OCITarball writes img as an OCI tarball in a temp dir of t and returns its
// path.
func OCITarball(t testing.TB, img Image) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "image.tar")
	if err := WriteFile(path, func(w io.Writer) error { return WriteOCI(w, img) }); err != nil {
		t.Fatal(err)
	}
	return path
}

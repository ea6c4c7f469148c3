package testimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"sort"
	"time"
)

// File is one entry of an image layer.
type File struct {
	// Path inside the image, without a leading slash ("bin/sh").
	Path string
	// Mode holds the permission bits; fs.ModeDir and fs.ModeSymlink select the
	// entry type.
	Mode fs.FileMode
	// Data is the file content; for a symlink, its target.
	Data []byte
}

// Image is a single-layer image.
type Image struct {
	// Ref is the full image reference recorded in the tarball, such as
	// "docker.io/tinykube/testserver:v1".
	Ref        string
	Files      []File
	Entrypoint []string
	Cmd        []string
	Env        []string
	WorkingDir string
	// ExposedPorts like "8080/tcp".
	ExposedPorts []string
}

type blob struct {
	mediaType string
	data      []byte
}

func (b blob) digest() string {
	sum := sha256.Sum256(b.data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int               `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    map[string]string `json:"platform,omitempty"`
}

func (b blob) desc() descriptor {
	return descriptor{MediaType: b.mediaType, Digest: b.digest(), Size: len(b.data)}
}

// layerTar returns the uncompressed layer tar.
func (img Image) layerTar() ([]byte, error) {
	files := append([]File(nil), img.Files...)
	sort.SliceStable(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Unix(0, 0)
	for _, f := range files {
		h := &tar.Header{Name: f.Path, Mode: int64(f.Mode.Perm()), ModTime: mtime, Format: tar.FormatPAX}
		switch {
		case f.Mode&fs.ModeDir != 0:
			h.Typeflag = tar.TypeDir
			h.Name += "/"
		case f.Mode&fs.ModeSymlink != 0:
			h.Typeflag = tar.TypeSymlink
			h.Linkname = string(f.Data)
		default:
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(f.Data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(f.Data); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func (img Image) configBlob(diffID string) (blob, error) {
	ports := map[string]struct{}{}
	for _, p := range img.ExposedPorts {
		ports[p] = struct{}{}
	}
	cfg := map[string]any{
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"created":      "1970-01-01T00:00:00Z",
		"config": map[string]any{
			"Entrypoint":   img.Entrypoint,
			"Cmd":          img.Cmd,
			"Env":          img.Env,
			"WorkingDir":   img.WorkingDir,
			"ExposedPorts": ports,
		},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{diffID}},
	}
	data, err := json.Marshal(cfg)
	return blob{mediaType: "application/vnd.oci.image.config.v1+json", data: data}, err
}

func gzipBytes(data []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteOCI writes img as an OCI image layout tarball. The manifest carries
// both the containerd image-name annotation and the OCI ref name.
func WriteOCI(w io.Writer, img Image) error {
	raw, err := img.layerTar()
	if err != nil {
		return err
	}
	diffID := blob{data: raw}.digest()
	gz, err := gzipBytes(raw)
	if err != nil {
		return err
	}
	layer := blob{mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", data: gz}
	config, err := img.configBlob(diffID)
	if err != nil {
		return err
	}
	manifestData, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        config.desc(),
		"layers":        []descriptor{layer.desc()},
	})
	if err != nil {
		return err
	}
	manifest := blob{mediaType: "application/vnd.oci.image.manifest.v1+json", data: manifestData}
	md := manifest.desc()
	md.Annotations = map[string]string{
		"io.containerd.image.name":          img.Ref,
		"org.opencontainers.image.ref.name": img.Ref,
	}
	md.Platform = map[string]string{"architecture": runtime.GOARCH, "os": "linux"}
	index, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests":     []descriptor{md},
	})
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	add := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: time.Unix(0, 0)}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := add("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	if err := add("index.json", index); err != nil {
		return err
	}
	for _, b := range []blob{layer, config, manifest} {
		if err := add("blobs/sha256/"+b.digest()[len("sha256:"):], b.data); err != nil {
			return err
		}
	}
	return tw.Close()
}

// WriteDockerArchive writes img in the `docker save` format.
func WriteDockerArchive(w io.Writer, img Image, repoTag string) error {
	raw, err := img.layerTar()
	if err != nil {
		return err
	}
	diffID := blob{data: raw}.digest()
	config, err := img.configBlob(diffID)
	if err != nil {
		return err
	}
	configName := config.digest()[len("sha256:"):] + ".json"
	layerName := diffID[len("sha256:"):] + "/layer.tar"
	manifest, err := json.Marshal([]map[string]any{{
		"Config":   configName,
		"RepoTags": []string{repoTag},
		"Layers":   []string{layerName},
	}})
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	for _, e := range []struct {
		name string
		data []byte
	}{{configName, config.data}, {layerName, raw}, {"manifest.json", manifest}} {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.data)), ModTime: time.Unix(0, 0)}); err != nil {
			return err
		}
		if _, err := tw.Write(e.data); err != nil {
			return err
		}
	}
	return tw.Close()
}

// WriteFile writes img to path with write (WriteOCI or a WriteDockerArchive
// closure).
func WriteFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("testimage: write %s: %w", path, err)
	}
	return f.Close()
}

package images

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/archive/compression"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/platforms"
)

// Namespace is the containerd namespace that holds the node's images and
// containers, the one upstream's CRI uses, so `ctr -n k8s.io` shows them.
const Namespace = "k8s.io"

// Snapshotter is the snapshotter containers' root filesystems come from.
const Snapshotter = "overlayfs"

// Import loads one OCI or docker-archive tarball (optionally gzip or zstd
// compressed) from r into containerd, unpacks its images for this platform
// and returns their names. ctx must carry the containerd namespace.
func Import(ctx context.Context, c *client.Client, r io.Reader) ([]string, error) {
	ds, err := compression.DecompressStream(r)
	if err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	defer ds.Close()
	imgs, err := c.Import(ctx, ds, client.WithImportPlatform(platforms.DefaultStrict()))
	if err != nil {
		return nil, fmt.Errorf("images: import: %w", err)
	}
	if len(imgs) == 0 {
		return nil, fmt.Errorf("images: the archive names no image (OCI archives need an org.opencontainers.image.ref.name annotation)")
	}
	var names []string
	for _, img := range imgs {
		if err := client.NewImage(c, img).Unpack(ctx, Snapshotter); err != nil {
			return names, fmt.Errorf("images: unpack %s: %w", img.Name, err)
		}
		names = append(names, img.Name)
	}
	return names, nil
}

// ImportFile imports the tarball at path.
func ImportFile(ctx context.Context, c *client.Client, path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	defer f.Close()
	names, err := Import(ctx, c, f)
	if err != nil {
		return names, fmt.Errorf("%s: %w", path, err)
	}
	return names, nil
}

// tarballSuffixes are the file names ImportDir picks up.
var tarballSuffixes = []string{".tar", ".tar.gz", ".tgz", ".tar.zst", ".tar.zstd"}

// ImportDir imports every tarball in dir (a missing dir holds none) and
// returns the image names. It goes on past a broken file and returns the
// first error at the end.
func ImportDir(ctx context.Context, c *client.Client, dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	var names []string
	var firstErr error
	for _, e := range entries {
		if e.IsDir() || !isTarball(e.Name()) {
			continue
		}
		n, err := ImportFile(ctx, c, filepath.Join(dir, e.Name()))
		names = append(names, n...)
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return names, firstErr
}

func isTarball(name string) bool {
	for _, s := range tarballSuffixes {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}

// ImportFiles is `tinykube images import`: it imports each file into the
// containerd at address. When no containerd answers there (tinykube is not
// running) it copies the files into queueDir (DATA_DIR/agent/images), whose
// tarballs the kubelet imports at start, and says so on out.
func ImportFiles(ctx context.Context, address, queueDir string, files []string, out io.Writer) error {
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("images: %w", err)
		}
	}
	c, err := client.New(address, client.WithDefaultNamespace(Namespace), client.WithTimeout(2*time.Second))
	if err == nil {
		defer c.Close()
		var serving bool
		pingCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		serving, err = c.IsServing(pingCtx)
		cancel()
		if err == nil && !serving {
			err = fmt.Errorf("not serving")
		}
	}
	if err != nil {
		if err := os.MkdirAll(queueDir, 0o755); err != nil {
			return fmt.Errorf("images: %w", err)
		}
		for _, f := range files {
			dst := filepath.Join(queueDir, filepath.Base(f))
			if !isTarball(dst) {
				dst += ".tar"
			}
			if err := copyFile(f, dst); err != nil {
				return fmt.Errorf("images: %w", err)
			}
			fmt.Fprintf(out, "containerd is not running at %s: copied %s to %s; it is imported when tinykube starts\n", address, f, dst)
		}
		return nil
	}
	ctx = namespaces.WithNamespace(ctx, Namespace)
	for _, f := range files {
		names, err := ImportFile(ctx, c, f)
		if err != nil {
			return err
		}
		for _, n := range names {
			fmt.Fprintf(out, "imported %s\n", n)
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".partial"
	out, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(tmp)
		return err
	}
	if err := out.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, dst)
}

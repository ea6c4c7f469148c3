package kubelet

import (
	"context"
	"io"
	"net"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/errdefs"
	"github.com/tinykube/tinykube/kubelet/containers"
	"github.com/tinykube/tinykube/kubelet/images"
	"github.com/tinykube/tinykube/kubelet/sandbox"
)

// ContainerRuntime is what the pod workers need from the container runtime.
// Methods are safe for concurrent use; calls for one pod are serialized by
// its worker.
type ContainerRuntime interface {
	// Start creates and starts a container and returns its ID.
	Start(ctx context.Context, s containers.Spec) (string, error)
	// ListPod returns the containers of one pod, all attempts, in any state.
	ListPod(ctx context.Context, podUID string) ([]containers.Status, error)
	// List returns every container on the node.
	List(ctx context.Context) ([]containers.Status, error)
	// Stop ends a container: SIGTERM, then SIGKILL after grace. Stopping a
	// stopped container is fine.
	Stop(ctx context.Context, id string, grace time.Duration) error
	// Remove deletes a container and its root filesystem; fine when gone.
	Remove(ctx context.Context, id string) error
	// Exec runs cmd in a running container, output to out.
	Exec(ctx context.Context, id string, cmd []string, out io.Writer) (int, error)
	// ExecStream runs cmd with the given streams (nil for none), on a
	// terminal resized from resize when tty, and returns its exit code.
	ExecStream(ctx context.Context, id string, cmd []string, stdin io.Reader, stdout, stderr io.Writer, tty bool, resize <-chan containers.TerminalSize) (int, error)
	// Attach connects streams (nil for none) to a running container's
	// stdio until it exits, ctx ends or the client's stdin ends.
	Attach(ctx context.Context, id string, stdin io.Reader, stdout, stderr io.Writer, resize <-chan containers.TerminalSize) error
	// ImageID is the digest of an image present on the node.
	ImageID(ctx context.Context, ref string) (string, error)
}

// ImageService is what the pod workers need from the node's image store.
type ImageService interface {
	// ImagePresent reports whether the image ref (normalized) is on the
	// node.
	ImagePresent(ctx context.Context, ref string) (bool, error)
	// PullImage fetches ref through resolver, which carries the node's
	// mirrors and the pod's credentials, and returns its size in bytes.
	PullImage(ctx context.Context, ref string, resolver remotes.Resolver) (int64, error)
	// RuntimeVersion is the runtime's name and version as the Node shows
	// it: "containerd://1.6.20".
	RuntimeVersion(ctx context.Context) (string, error)
}

// PodNetwork is what the pod workers need from pod sandboxes.
type PodNetwork interface {
	// Setup creates or returns the pod's namespaces and address.
	Setup(ctx context.Context, pod sandbox.Pod, hostname string, ports []sandbox.PortMapping) (sandbox.Sandbox, error)
	// Teardown removes them; fine when gone.
	Teardown(ctx context.Context, uid string) error
	// List returns the UIDs of pods that have a sandbox.
	List() ([]string, error)
	// DialLocal connects to localhost:port inside the pod's network
	// namespace.
	DialLocal(ctx context.Context, uid string, port string) (net.Conn, error)
}

var (
	_ ContainerRuntime = (*containers.Runtime)(nil)
	_ PodNetwork       = (*sandbox.Manager)(nil)
)

// containerdImages is the ImageService of a containerd.
type containerdImages struct{ c *client.Client }

func (i containerdImages) ImagePresent(ctx context.Context, ref string) (bool, error) {
	_, err := i.c.GetImage(namespacedContext(ctx), ref)
	if errdefs.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

func (i containerdImages) PullImage(ctx context.Context, ref string, resolver remotes.Resolver) (int64, error) {
	ctx = namespacedContext(ctx)
	img, err := i.c.Pull(ctx, ref, client.WithPullUnpack, client.WithPullSnapshotter(images.Snapshotter), client.WithResolver(resolver))
	if err != nil {
		return 0, err
	}
	size, _ := img.Size(ctx)
	return size, nil
}

func (i containerdImages) RuntimeVersion(ctx context.Context) (string, error) {
	v, err := i.c.Version(ctx)
	if err != nil {
		return "", err
	}
	return "containerd://" + v.Version, nil
}

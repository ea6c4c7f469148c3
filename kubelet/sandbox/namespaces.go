package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// nsKinds are the namespaces a pod shares, by their /proc/PID/ns name.
var nsKinds = []struct {
	name string
	flag int
}{
	{"net", unix.CLONE_NEWNET},
	{"uts", unix.CLONE_NEWUTS},
	{"ipc", unix.CLONE_NEWIPC},
}

// createNamespaces makes new net, UTS and IPC namespaces, sets hostname in
// the UTS one and bind-mounts each to dir/<kind>. On error nothing is left.
func createNamespaces(dir, hostname string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, k := range nsKinds {
		f, err := os.OpenFile(filepath.Join(dir, k.name), os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o600)
		if err != nil {
			removeNamespaces(dir)
			return err
		}
		f.Close()
	}
	errc := make(chan error, 1)
	go func() {
		// This thread enters the new namespaces and is never unlocked, so
		// the Go runtime ends it with the goroutine instead of reusing it.
		runtime.LockOSThread()
		flags := 0
		for _, k := range nsKinds {
			flags |= k.flag
		}
		if err := unix.Unshare(flags); err != nil {
			errc <- fmt.Errorf("unshare: %w", err)
			return
		}
		if err := unix.Sethostname([]byte(hostname)); err != nil {
			errc <- fmt.Errorf("sethostname: %w", err)
			return
		}
		if err := loopbackUp(); err != nil {
			errc <- fmt.Errorf("loopback: %w", err)
			return
		}
		tid := unix.Gettid()
		for _, k := range nsKinds {
			src := fmt.Sprintf("/proc/self/task/%d/ns/%s", tid, k.name)
			if err := unix.Mount(src, filepath.Join(dir, k.name), "none", unix.MS_BIND, ""); err != nil {
				errc <- fmt.Errorf("bind %s namespace: %w", k.name, err)
				return
			}
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		removeNamespaces(dir)
		return fmt.Errorf("sandbox: %w", err)
	}
	return nil
}

// removeNamespaces unmounts and removes what createNamespaces made; missing
// pieces are fine.
func removeNamespaces(dir string) error {
	var errs []error
	for _, k := range nsKinds {
		p := filepath.Join(dir, k.name)
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			errs = append(errs, err)
		}
	}
	if err := os.Remove(dir); err != nil && !os.IsNotExist(err) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// isNamespaceMount reports whether path is a pinned namespace.
func isNamespaceMount(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}

// loopbackUp sets "lo" up in the calling thread's network namespace: what
// the CNI loopback plugin does, without starting a process for it.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// dialIn connects to address from inside the network namespace pinned at
// nsPath. The socket is made on a thread that enters the namespace and is
// then discarded, like the one that created the namespace: a socket stays
// in the namespace it was made in.
func dialIn(ctx context.Context, nsPath, network, address string) (net.Conn, error) {
	type result struct {
		conn net.Conn
		err  error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends in the pod's namespace
		f, err := os.Open(nsPath)
		if err != nil {
			done <- result{nil, err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- result{nil, fmt.Errorf("enter %s: %w", nsPath, err)}
			return
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, network, address)
		done <- result{conn, err}
	}()
	r := <-done
	return r.conn, r.err
}

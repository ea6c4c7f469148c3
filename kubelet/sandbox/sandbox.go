package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
)

// NetworkName is the CNI network the pods of a node are attached to.
const NetworkName = "tinykube"

// ifName is the pod's interface.
const ifName = "eth0"

// DefaultPluginDirs are searched for the CNI plugins, Debian's first.
var DefaultPluginDirs = []string{"/usr/lib/cni", "/opt/cni/bin"}

// requiredPlugins are the CNI plugins the node's network uses. The
// loopback interface is set up without a plugin (see loopbackUp).
var requiredPlugins = []string{"bridge", "host-local", "portmap"}

// Config configures a Manager.
type Config struct {
	// Dir holds the pinned namespaces, the CNI config, cache and host-local
	// allocations (DATA_DIR/agent/cni). Required.
	Dir string
	// PluginDirs are searched for CNI plugins; default DefaultPluginDirs.
	PluginDirs []string
	// Bridge is the Linux bridge pods attach to; default "tinykube0".
	Bridge string
	// PodCIDR is the node's pod range; the bridge takes its first address.
	// Required.
	PodCIDR netip.Prefix
	// IPMasq masquerades pod traffic leaving the pod CIDR (bridge ipMasq).
	IPMasq bool
	// MTU of the bridge and veths; 0 lets the plugin choose.
	MTU int
}

// Pod identifies the pod a sandbox belongs to.
type Pod struct {
	UID, Namespace, Name string
}

// Sandbox is a pod's set of namespaces and its address.
type Sandbox struct {
	// NetNS, UTSNS and IPCNS are the paths of the pinned namespaces.
	NetNS, UTSNS, IPCNS string
	// IP is the pod's address on the node's pod network.
	IP netip.Addr
}

// Manager creates and removes pod sandboxes. It is safe for concurrent use;
// calls for the same pod must not overlap (the kubelet's pod worker
// serializes them).
type Manager struct {
	cfg  Config
	cni  *libcni.CNIConfig
	list *libcni.NetworkConfigList
	// bridgeOnly is list without portmap, for pods without hostPorts:
	// one process less to start per pod, on ADD and on DEL.
	bridgeOnly *libcni.NetworkConfigList
}

// New validates cfg, checks the CNI plugins are installed and writes the
// network config.
func New(cfg Config) (*Manager, error) {
	if cfg.Dir == "" {
		return nil, errors.New("sandbox: Dir is required")
	}
	if !cfg.PodCIDR.IsValid() || !cfg.PodCIDR.Addr().Is4() {
		return nil, fmt.Errorf("sandbox: an IPv4 PodCIDR is required, got %q", cfg.PodCIDR)
	}
	if len(cfg.PluginDirs) == 0 {
		cfg.PluginDirs = DefaultPluginDirs
	}
	if cfg.Bridge == "" {
		cfg.Bridge = "tinykube0"
	}
	if err := CheckPlugins(cfg.PluginDirs); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, err
	}
	cfg.Dir = abs
	cfg.PodCIDR = cfg.PodCIDR.Masked()
	// An explicit exec: libcni fills in a nil one lazily, which races
	// when pods are set up in parallel.
	pluginExec := &invoke.DefaultExec{RawExec: &invoke.RawExec{Stderr: os.Stderr}, PluginDecoder: version.PluginDecoder{}}
	m := &Manager{cfg: cfg, cni: libcni.NewCNIConfigWithCacheDir(cfg.PluginDirs, filepath.Join(cfg.Dir, "cache"), pluginExec)}
	conf, err := m.conflist()
	if err != nil {
		return nil, err
	}
	if m.list, err = libcni.ConfListFromBytes(conf); err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	var parsed map[string]any
	if err := json.Unmarshal(conf, &parsed); err != nil {
		return nil, err
	}
	parsed["plugins"] = parsed["plugins"].([]any)[:1]
	bridgeOnly, err := json.Marshal(parsed)
	if err != nil {
		return nil, err
	}
	if m.bridgeOnly, err = libcni.ConfListFromBytes(bridgeOnly); err != nil {
		return nil, fmt.Errorf("sandbox: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "net.d"), 0o755); err != nil {
		return nil, err
	}
	// For people and tools: the config in use.
	if err := os.WriteFile(filepath.Join(cfg.Dir, "net.d", "10-tinykube.conflist"), conf, 0o644); err != nil {
		return nil, err
	}
	return m, nil
}

// CheckPlugins reports the first missing CNI plugin with the package to
// install.
func CheckPlugins(dirs []string) error {
	for _, p := range requiredPlugins {
		found := false
		for _, d := range dirs {
			if st, err := os.Stat(filepath.Join(d, p)); err == nil && !st.IsDir() {
				found = true
				break
			}
		}
		if !found {
			return fmt.Errorf("CNI plugin %q not found in %v: install the \"containernetworking-plugins\" package (apt-get install containernetworking-plugins)", p, dirs)
		}
	}
	return nil
}

// Gateway is the bridge's address: the first of the pod CIDR.
func (m *Manager) Gateway() netip.Addr { return m.cfg.PodCIDR.Addr().Next() }

// Bridge is the name of the node's pod bridge.
func (m *Manager) Bridge() string { return m.cfg.Bridge }

func (m *Manager) conflist() ([]byte, error) {
	bridge := map[string]any{
		"type":        "bridge",
		"bridge":      m.cfg.Bridge,
		"isGateway":   true,
		"ipMasq":      m.cfg.IPMasq,
		"hairpinMode": true,
		"ipam": map[string]any{
			"type":    "host-local",
			"ranges":  [][]map[string]string{{{"subnet": m.cfg.PodCIDR.String(), "gateway": m.Gateway().String()}}},
			"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
			"dataDir": filepath.Join(m.cfg.Dir, "ipam"),
		},
	}
	if m.cfg.MTU > 0 {
		bridge["mtu"] = m.cfg.MTU
	}
	return json.MarshalIndent(map[string]any{
		"cniVersion": "1.0.0",
		"name":       NetworkName,
		"plugins": []any{
			bridge,
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}, "snat": true},
		},
	}, "", "  ")
}

var safeName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

func (m *Manager) podDir(uid string) (string, error) {
	if !safeName.MatchString(uid) {
		return "", fmt.Errorf("sandbox: bad pod uid %q", uid)
	}
	return filepath.Join(m.cfg.Dir, "netns", uid), nil
}

// PortMapping is a hostPort of a pod.
type PortMapping struct {
	HostPort      int32  `json:"hostPort"`
	ContainerPort int32  `json:"containerPort"`
	Protocol      string `json:"protocol"`
	HostIP        string `json:"hostIP,omitempty"`
}

func (m *Manager) runtimeConf(pod Pod, netns string, ports []PortMapping) *libcni.RuntimeConf {
	rt := &libcni.RuntimeConf{
		ContainerID: pod.UID,
		NetNS:       netns,
		IfName:      ifName,
		Args: [][2]string{
			{"IgnoreUnknown", "1"},
			{"K8S_POD_NAMESPACE", pod.Namespace},
			{"K8S_POD_NAME", pod.Name},
			{"K8S_POD_UID", pod.UID},
		},
	}
	if len(ports) > 0 {
		rt.CapabilityArgs = map[string]any{"portMappings": ports}
	}
	return rt
}

// Setup creates the pod's namespaces and attaches it to the pod network. It
// is idempotent: for a pod that already has a sandbox it returns that one.
func (m *Manager) Setup(ctx context.Context, pod Pod, hostname string, ports []PortMapping) (Sandbox, error) {
	dir, err := m.podDir(pod.UID)
	if err != nil {
		return Sandbox{}, err
	}
	sb := Sandbox{NetNS: filepath.Join(dir, "net"), UTSNS: filepath.Join(dir, "uts"), IPCNS: filepath.Join(dir, "ipc")}
	if isNamespaceMount(sb.NetNS) {
		if ip, err := m.cachedIP(pod, sb.NetNS); err == nil {
			sb.IP = ip
			return sb, nil
		}
		// Half made: start over.
		if err := m.Teardown(ctx, pod.UID); err != nil {
			return Sandbox{}, err
		}
	} else if _, err := os.Stat(dir); err == nil {
		_ = removeNamespaces(dir)
	}
	if err := createNamespaces(dir, hostname); err != nil {
		return Sandbox{}, err
	}
	list := m.bridgeOnly
	if len(ports) > 0 {
		list = m.list
	}
	res, err := m.cni.AddNetworkList(ctx, list, m.runtimeConf(pod, sb.NetNS, ports))
	if err != nil {
		_ = m.Teardown(context.WithoutCancel(ctx), pod.UID)
		return Sandbox{}, fmt.Errorf("sandbox: CNI ADD: %w", err)
	}
	ip, err := podIP(res)
	if err != nil {
		_ = m.Teardown(context.WithoutCancel(ctx), pod.UID)
		return Sandbox{}, err
	}
	sb.IP = ip
	return sb, nil
}

func (m *Manager) cachedIP(pod Pod, netns string) (netip.Addr, error) {
	res, err := m.cni.GetNetworkListCachedResult(m.list, m.runtimeConf(pod, netns, nil))
	if err != nil {
		return netip.Addr{}, err
	}
	if res == nil {
		return netip.Addr{}, errors.New("no cached CNI result")
	}
	return podIP(res)
}

func podIP(res types.Result) (netip.Addr, error) {
	r, err := types100.GetResult(res)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("sandbox: CNI result: %w", err)
	}
	for _, ipc := range r.IPs {
		if a, ok := netip.AddrFromSlice(ipc.Address.IP); ok {
			return a.Unmap(), nil
		}
	}
	return netip.Addr{}, errors.New("sandbox: CNI returned no IP")
}

// DialLocal connects to the pod's own loopback on port, from inside its
// network namespace (port-forward's target, as upstream's runtimes do:
// servers that listen only on localhost are reachable), IPv4 first, then
// IPv6.
func (m *Manager) DialLocal(ctx context.Context, uid string, port string) (net.Conn, error) {
	dir, err := m.podDir(uid)
	if err != nil {
		return nil, err
	}
	netns := filepath.Join(dir, "net")
	if !isNamespaceMount(netns) {
		return nil, fmt.Errorf("sandbox: pod %s has no network namespace", uid)
	}
	conn, err4 := dialIn(ctx, netns, "tcp4", net.JoinHostPort("127.0.0.1", port))
	if err4 == nil {
		return conn, nil
	}
	conn, err6 := dialIn(ctx, netns, "tcp6", net.JoinHostPort("::1", port))
	if err6 == nil {
		return conn, nil
	}
	return nil, fmt.Errorf("failed to connect to localhost:%s inside the pod's network namespace, IPv4: %v IPv6: %v", port, err4, err6)
}

// Teardown detaches the pod from the network (CNI DEL frees its IP and
// veth) and removes its namespaces. A pod without a sandbox is fine.
func (m *Manager) Teardown(ctx context.Context, uid string) error {
	dir, err := m.podDir(uid)
	if err != nil {
		return err
	}
	netns := filepath.Join(dir, "net")
	if !isNamespaceMount(netns) {
		// The namespace is gone (say, after a reboot): DEL without it still
		// releases the IP.
		netns = ""
	}
	pod := Pod{UID: uid}
	var errs []error
	if _, statErr := os.Stat(dir); statErr == nil || m.hasCache(uid) {
		// DEL with the config ADD used, which libcni cached.
		list := m.bridgeOnly
		if cached, _, err := m.cni.GetNetworkListCachedConfig(m.list, m.runtimeConf(pod, netns, nil)); err == nil && bytes.Contains(cached, []byte(`"portmap"`)) {
			list = m.list
		}
		if err := m.cni.DelNetworkList(ctx, list, m.runtimeConf(pod, netns, nil)); err != nil {
			errs = append(errs, fmt.Errorf("CNI DEL: %w", err))
		}
	}
	if len(errs) == 0 {
		if err := removeNamespaces(dir); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sandbox: teardown %s: %w", uid, err)
	}
	return nil
}

func (m *Manager) hasCache(uid string) bool {
	matches, _ := filepath.Glob(filepath.Join(m.cfg.Dir, "cache", "results", NetworkName+"-"+uid+"-*"))
	return len(matches) > 0
}

// List returns the UIDs of the pods that have a sandbox on this node.
func (m *Manager) List() ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(m.cfg.Dir, "netns"))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var uids []string
	for _, e := range entries {
		if e.IsDir() {
			uids = append(uids, e.Name())
		}
	}
	return uids, nil
}

// RemoveBridge deletes the node's pod bridge; for tests and node removal.
func (m *Manager) RemoveBridge() error {
	out, err := exec.Command("ip", "link", "delete", m.cfg.Bridge, "type", "bridge").CombinedOutput()
	if err != nil {
		return fmt.Errorf("sandbox: delete bridge %s: %v: %s", m.cfg.Bridge, err, out)
	}
	return nil
}

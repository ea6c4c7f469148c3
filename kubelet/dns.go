package kubelet

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
)

// Limits of the pod's resolv.conf, upstream's (they come from libc's
// resolver): at most 3 nameservers, 32 search domains of at most 253
// characters each, 2048 characters on the search line.
const (
	maxDNSNameservers     = 3
	maxDNSSearchPaths     = 32
	maxDNSSearchListChars = 2048
	maxDNSSearchLength    = 253
	maxResolvConfLength   = 10 << 20
)

// defaultDNSOptions are the options of a ClusterFirst pod, upstream's.
var defaultDNSOptions = []string{"ndots:5"}

// dnsConfig is what goes into a pod's /etc/resolv.conf.
type dnsConfig struct {
	servers, searches, options []string
}

// resolvConf renders c as containerd's CRI plugin writes it: the search
// line, one nameserver line per server, the options line.
func (c dnsConfig) resolvConf() []byte {
	var b bytes.Buffer
	if len(c.searches) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(c.searches, " "))
	}
	for _, s := range c.servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(c.options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(c.options, " "))
	}
	return b.Bytes()
}

// dnsConfigurer computes pods' DNS settings from their dnsPolicy and
// dnsConfig, the cluster DNS and the node's resolv.conf, as upstream's
// kubelet (pkg/kubelet/network/dns).
type dnsConfigurer struct {
	log           *slog.Logger
	clusterDNS    []netip.Addr
	clusterDomain string
	// resolvConf is the node's resolver configuration, the base of
	// Default pods and the source of host search domains; empty gives
	// Default pods a resolver that answers nothing, as upstream.
	resolvConf string
	nodeIPs    []netip.Addr
	recorder   record.EventRecorder
	nodeRef    *corev1.ObjectReference
}

// podDNS returns the DNS settings of pod.
func (c *dnsConfigurer) podDNS(pod *corev1.Pod) (dnsConfig, error) {
	cfg, err := c.hostDNS()
	if err != nil {
		return dnsConfig{}, err
	}
	switch podDNSPolicy(pod) {
	case corev1.DNSNone:
		cfg = dnsConfig{}
	case corev1.DNSClusterFirst:
		if len(c.clusterDNS) > 0 {
			// The cluster DNS forwards what it does not know, so it is
			// the pod's only nameserver.
			cfg.servers = nil
			for _, ip := range c.clusterDNS {
				cfg.servers = append(cfg.servers, ip.String())
			}
			cfg.searches = c.clusterSearches(pod, cfg.searches)
			cfg.options = slices.Clone(defaultDNSOptions)
			break
		}
		msg := fmt.Sprintf("kubelet does not have ClusterDNS IP configured and cannot create Pod using %q policy. Falling back to %q policy.", corev1.DNSClusterFirst, corev1.DNSDefault)
		if c.recorder != nil {
			if c.nodeRef != nil {
				c.recorder.Event(c.nodeRef, corev1.EventTypeWarning, "MissingClusterDNS", msg)
			}
			c.recorder.Eventf(pod, corev1.EventTypeWarning, "MissingClusterDNS", "pod: %q. %s", podDesc(pod), msg)
		}
		fallthrough
	case corev1.DNSDefault:
		if c.resolvConf == "" {
			// No node resolver: one that answers nothing, so lookups
			// fail fast instead of reaching the runtime's default.
			for _, ip := range c.nodeIPs {
				if ip.Is6() {
					cfg.servers = append(cfg.servers, "::")
				} else {
					cfg.servers = append(cfg.servers, "0.0.0.0")
				}
			}
			cfg.searches = []string{"."}
		}
	}
	if dc := pod.Spec.DNSConfig; dc != nil {
		cfg.servers = omitDuplicates(append(cfg.servers, dc.Nameservers...))
		cfg.searches = omitDuplicates(append(cfg.searches, dc.Searches...))
		cfg.options = mergeDNSOptions(cfg.options, dc.Options)
	}
	cfg.servers = c.fitNameservers(pod, cfg.servers)
	cfg.searches = c.fitSearches(pod, cfg.searches)
	return cfg, nil
}

// Where the node's resolver configuration usually is.
const (
	hostResolvConf            = "/etc/resolv.conf"
	systemdResolvedResolvConf = "/run/systemd/resolve/resolv.conf"
)

// nodeResolvConf picks the node's resolv.conf for pods: host, unless all
// its nameservers are loopback addresses (systemd-resolved's 127.0.0.53
// stub, dnsmasq), which mean nothing inside a pod's network namespace;
// then fallback, the upstream servers systemd-resolved lists, when it
// exists (as k3s does).
func nodeResolvConf(log *slog.Logger, host, fallback string) string {
	f, err := os.Open(host)
	if err != nil {
		return host
	}
	defer f.Close()
	cfg, err := parseResolvConf(f)
	if err != nil || len(cfg.servers) == 0 {
		return host
	}
	for _, s := range cfg.servers {
		if ip, err := netip.ParseAddr(s); err != nil || !ip.IsLoopback() {
			return host
		}
	}
	if _, err := os.Stat(fallback); err != nil {
		log.Warn("the node's resolv.conf lists only loopback nameservers, which pods cannot reach; pods with dnsPolicy Default get them anyway", "file", host)
		return host
	}
	return fallback
}

// podDNSPolicy reduces the pod's dnsPolicy to None, ClusterFirst or
// Default: ClusterFirst means Default for host-network pods (they keep the
// node's resolver) unless the pod asks for ClusterFirstWithHostNet.
func podDNSPolicy(pod *corev1.Pod) corev1.DNSPolicy {
	switch pod.Spec.DNSPolicy {
	case corev1.DNSNone:
		return corev1.DNSNone
	case corev1.DNSClusterFirstWithHostNet:
		return corev1.DNSClusterFirst
	case corev1.DNSDefault:
		return corev1.DNSDefault
	case corev1.DNSClusterFirst, "":
		if pod.Spec.HostNetwork {
			return corev1.DNSDefault
		}
		return corev1.DNSClusterFirst
	}
	// The API server refuses any other value.
	return corev1.DNSClusterFirst
}

// clusterSearches is NS.svc.DOMAIN svc.DOMAIN DOMAIN, then the node's
// search domains.
func (c *dnsConfigurer) clusterSearches(pod *corev1.Pod, host []string) []string {
	if c.clusterDomain == "" {
		return host
	}
	return omitDuplicates(append([]string{
		pod.Namespace + ".svc." + c.clusterDomain,
		"svc." + c.clusterDomain,
		c.clusterDomain,
	}, host...))
}

// hostDNS reads the node's resolv.conf. A missing file is an empty one:
// pods still run, resolving nothing but the cluster.
func (c *dnsConfigurer) hostDNS() (dnsConfig, error) {
	if c.resolvConf == "" {
		return dnsConfig{}, nil
	}
	f, err := os.Open(c.resolvConf)
	if errors.Is(err, os.ErrNotExist) {
		c.log.Warn("the node's resolv.conf does not exist; pods get no node nameservers", "file", c.resolvConf)
		return dnsConfig{}, nil
	}
	if err != nil {
		return dnsConfig{}, err
	}
	defer f.Close()
	cfg, err := parseResolvConf(f)
	if err != nil {
		return dnsConfig{}, fmt.Errorf("encountered error while parsing resolv conf file %s: %w", c.resolvConf, err)
	}
	return cfg, nil
}

// parseResolvConf reads nameservers (they accumulate), the last search
// line (its trailing dots dropped, "." omitted) and options (by name, the
// later wins), as upstream.
func parseResolvConf(r io.Reader) (dnsConfig, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxResolvConfLength+1))
	if err != nil {
		return dnsConfig{}, err
	}
	if len(data) > maxResolvConfLength {
		return dnsConfig{}, fmt.Errorf("resolv.conf is larger than %d bytes", maxResolvConfLength)
	}
	var cfg dnsConfig
	var errs []error
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		switch fields[0] {
		case "nameserver":
			if len(fields) < 2 {
				errs = append(errs, errors.New("nameserver list is empty "))
				continue
			}
			cfg.servers = append(cfg.servers, fields[1])
		case "search":
			cfg.searches = nil
			for _, s := range fields[1:] {
				if s != "." {
					cfg.searches = append(cfg.searches, strings.TrimSuffix(s, "."))
				}
			}
		case "options":
			cfg.options = appendOptions(cfg.options, fields[1:]...)
		}
	}
	return cfg, errors.Join(errs...)
}

// optionName is "ndots" of "ndots:5".
func optionName(opt string) string {
	name, _, _ := strings.Cut(opt, ":")
	return name
}

// appendOptions adds options, replacing earlier ones of the same name in
// place.
func appendOptions(opts []string, more ...string) []string {
	for _, o := range more {
		if i := slices.IndexFunc(opts, func(e string) bool { return optionName(e) == optionName(o) }); i >= 0 {
			opts[i] = o
		} else {
			opts = append(opts, o)
		}
	}
	return opts
}

// mergeDNSOptions adds the pod's dnsConfig options to opts; the pod's win
// by name.
func mergeDNSOptions(opts []string, podOpts []corev1.PodDNSConfigOption) []string {
	out := slices.Clone(opts)
	for _, o := range podOpts {
		opt := o.Name
		if o.Value != nil && *o.Value != "" {
			opt += ":" + *o.Value
		}
		out = appendOptions(out, opt)
	}
	return out
}

func omitDuplicates(in []string) []string {
	seen := map[string]bool{}
	out := in[:0:0]
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// fitNameservers keeps the first three nameservers, with upstream's
// DNSConfigForming warning when there were more.
func (c *dnsConfigurer) fitNameservers(pod *corev1.Pod, servers []string) []string {
	if len(servers) <= maxDNSNameservers {
		return servers
	}
	servers = servers[:maxDNSNameservers]
	c.warnForming(pod, fmt.Sprintf("Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: %s", strings.Join(servers, " ")))
	return servers
}

// fitSearches applies upstream's search line limits: at most 32 domains,
// none longer than 253 characters, at most 2048 characters in all (the
// last domains go first).
func (c *dnsConfigurer) fitSearches(pod *corev1.Pod, searches []string) []string {
	exceeded := false
	if len(searches) > maxDNSSearchPaths {
		searches = searches[:maxDNSSearchPaths]
		exceeded = true
	}
	kept := searches[:0:0]
	for _, s := range searches {
		if len(s) > maxDNSSearchLength {
			exceeded = true
			continue
		}
		kept = append(kept, s)
	}
	searches = kept
	for len(searches) > 0 && len(strings.Join(searches, " ")) > maxDNSSearchListChars {
		searches = searches[:len(searches)-1]
		exceeded = true
	}
	if exceeded {
		c.warnForming(pod, fmt.Sprintf("Search Line limits were exceeded, some search paths have been omitted, the applied search line is: %s", strings.Join(searches, " ")))
	}
	return searches
}

func (c *dnsConfigurer) warnForming(pod *corev1.Pod, msg string) {
	c.log.Error(msg, "pod", klog.KObj(pod))
	if c.recorder != nil {
		c.recorder.Event(pod, corev1.EventTypeWarning, "DNSConfigForming", msg)
	}
}

// podDesc is upstream's format.Pod: NAME_NAMESPACE(UID).
func podDesc(pod *corev1.Pod) string {
	return fmt.Sprintf("%s_%s(%s)", pod.Name, pod.Namespace, pod.UID)
}

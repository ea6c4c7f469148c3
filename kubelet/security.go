package kubelet

import (
	"context"

	"strings"

	"github.com/containerd/containerd/v2/core/containers"

	"github.com/containerd/containerd/v2/pkg/oci"
	corev1 "k8s.io/api/core/v1"
)

// securityOpts turns the pod's and container's securityContext and the
// container's resources into OCI spec options: user and group, privileged,
// capabilities, a read-only root filesystem, and cgroup limits (memory, CPU
// quota, CPU shares).
func securityOpts(pod *corev1.Pod, c *corev1.Container) []oci.SpecOpts {
	var opts []oci.SpecOpts
	psc := pod.Spec.SecurityContext
	sc := c.SecurityContext
	var uid, gid *int64
	if psc != nil {
		uid, gid = psc.RunAsUser, psc.RunAsGroup
	}
	if sc != nil {
		if sc.RunAsUser != nil {
			uid = sc.RunAsUser
		}
		if sc.RunAsGroup != nil {
			gid = sc.RunAsGroup
		}
	}
	switch {
	case uid != nil && gid != nil:
		opts = append(opts, oci.WithUIDGID(uint32(*uid), uint32(*gid)))
	case uid != nil:
		opts = append(opts, oci.WithUserID(uint32(*uid)))
	case gid != nil:
		opts = append(opts, withGID(uint32(*gid)))
	}
	if psc != nil && len(psc.SupplementalGroups) > 0 {
		gids := make([]uint32, len(psc.SupplementalGroups))
		for i, g := range psc.SupplementalGroups {
			gids[i] = uint32(g)
		}
		opts = append(opts, withAdditionalGIDs(gids))
	}
	if sc != nil {
		if sc.Privileged != nil && *sc.Privileged {
			opts = append(opts, oci.WithPrivileged, oci.WithAllDevicesAllowed, oci.WithWriteableSysfs, oci.WithWriteableCgroupfs)
		} else if sc.Capabilities != nil {
			for _, d := range sc.Capabilities.Drop {
				if strings.EqualFold(string(d), "ALL") {
					opts = append(opts, oci.WithCapabilities(nil))
					break
				}
			}
			if caps := capNames(sc.Capabilities.Drop); len(caps) > 0 && !contains(caps, "CAP_ALL") {
				opts = append(opts, oci.WithDroppedCapabilities(caps))
			}
			if caps := capNames(sc.Capabilities.Add); len(caps) > 0 {
				opts = append(opts, oci.WithAddedCapabilities(caps))
			}
		}
		if sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem {
			opts = append(opts, oci.WithRootFSReadonly())
		}
		if sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
			opts = append(opts, oci.WithNoNewPrivileges)
		}
	}
	if mem, ok := c.Resources.Limits[corev1.ResourceMemory]; ok && mem.Value() > 0 {
		opts = append(opts, oci.WithMemoryLimit(uint64(mem.Value())))
	}
	if cpu, ok := c.Resources.Limits[corev1.ResourceCPU]; ok && cpu.MilliValue() > 0 {
		// Upstream: quota = milliCPU * period / 1000 with a 100 ms period.
		const period = 100000
		quota := max(cpu.MilliValue()*period/1000, 1000)
		opts = append(opts, oci.WithCPUCFS(quota, period))
	}
	shares := uint64(2) // upstream's minimum, also for BestEffort
	if cpu, ok := c.Resources.Requests[corev1.ResourceCPU]; ok {
		shares = max(uint64(cpu.MilliValue()*1024/1000), 2)
	} else if cpu, ok := c.Resources.Limits[corev1.ResourceCPU]; ok {
		shares = max(uint64(cpu.MilliValue()*1024/1000), 2)
	}
	opts = append(opts, oci.WithCPUShares(shares))
	return opts
}

func capNames(caps []corev1.Capability) []string {
	var out []string
	for _, c := range caps {
		name := strings.ToUpper(string(c))
		if !strings.HasPrefix(name, "CAP_") {
			name = "CAP_" + name
		}
		out = append(out, name)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func withGID(gid uint32) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		s.Process.User.GID = gid
		return nil
	}
}

func withAdditionalGIDs(gids []uint32) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		s.Process.User.AdditionalGids = append(s.Process.User.AdditionalGids, gids...)
		return nil
	}
}

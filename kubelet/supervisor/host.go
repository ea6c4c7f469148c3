package supervisor

import (
	"fmt"
	"os/exec"
)

// requirement is a binary the node needs and the Debian package that ships it.
type requirement struct {
	binary, pkg string
}

var runtimeRequirements = []requirement{
	{"containerd-shim-runc-v2", "containerd"},
	{"runc", "runc"},
}

// CheckHost reports the first missing binary needed to run containers with a
// containerd at an existing endpoint (runc and the runc shim are what that
// containerd execs). ownContainerd adds containerd itself.
func CheckHost(ownContainerd bool) error {
	reqs := runtimeRequirements
	if ownContainerd {
		reqs = append([]requirement{{"containerd", "containerd"}}, reqs...)
	}
	for _, r := range reqs {
		if _, err := exec.LookPath(r.binary); err != nil {
			return fmt.Errorf("%s not found in PATH: install the %q package (apt-get install %s)", r.binary, r.pkg, r.pkg)
		}
	}
	return nil
}

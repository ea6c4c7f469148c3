package apiserver

import (
	"fmt"
	"net/http"
	"runtime"

	"k8s.io/apimachinery/pkg/version"
)

// KubernetesVersion is the Kubernetes release whose API tinykube serves.
// The "+tinykube" suffix is semver build metadata, like k3s's "+k3s1": a
// "-" suffix would make it a pre-release, which Helm's kubeVersion
// constraints (">= 1.19.0") reject.
const KubernetesVersion = "v1.37.2+tinykube"

// serveVersion answers /version; it needs no authentication.
func (s *Server) serveVersion(w http.ResponseWriter, r *http.Request) {
	info := version.Info{
		Major:        "1",
		Minor:        "37",
		GitVersion:   KubernetesVersion,
		GitTreeState: "clean",
		GoVersion:    runtime.Version(),
		Compiler:     runtime.Compiler,
		Platform:     fmt.Sprintf("%s/%s", runtime.GOOS, runtime.GOARCH),
	}
	writeJSON(w, http.StatusOK, info)
}

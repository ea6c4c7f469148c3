package images

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"sigs.k8s.io/yaml"
)

// DefaultRegistriesFile is where the registries file is read from unless
// --private-registry says otherwise, in k3s's registries.yaml format.
const DefaultRegistriesFile = "/etc/tinykube/registries.yaml"

// Registries is k3s's registries.yaml: mirrors per registry host and,
// per endpoint host, credentials and TLS settings.
type Registries struct {
	Mirrors map[string]Mirror         `json:"mirrors"`
	Configs map[string]RegistryConfig `json:"configs"`
}

// Mirror lists the endpoints tried for a registry, in order ("http://"
// endpoints are plain HTTP).
type Mirror struct {
	Endpoints []string `json:"endpoint"`
}

// RegistryConfig holds an endpoint host's credentials and TLS settings.
type RegistryConfig struct {
	Auth *RegistryAuth `json:"auth"`
	TLS  *RegistryTLS  `json:"tls"`
}

// RegistryAuth are registry credentials.
type RegistryAuth struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Auth     string `json:"auth"`
}

// RegistryTLS is an endpoint's TLS configuration.
type RegistryTLS struct {
	InsecureSkipVerify bool `json:"insecure_skip_verify"`
}

// LoadRegistries reads a registries file; a missing file is no
// configuration.
func LoadRegistries(path string) (*Registries, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &Registries{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	var r Registries
	if err := yaml.UnmarshalStrict(data, &r); err != nil {
		return nil, fmt.Errorf("images: %s: %w", path, err)
	}
	return &r, nil
}

// Credentials looks up a user name and password for a registry host.
type Credentials func(host string) (user, password string, ok bool)

// Resolver returns a resolver that pulls through the configured mirrors
// (then the registry itself), with the configured credentials or, failing
// those, creds (imagePullSecrets).
func (r *Registries) Resolver(creds Credentials) remotes.Resolver {
	return docker.NewResolver(docker.ResolverOptions{Hosts: r.hosts(creds)})
}

func (r *Registries) hosts(creds Credentials) docker.RegistryHosts {
	return func(host string) ([]docker.RegistryHost, error) {
		var endpoints []string
		if r != nil {
			if m, ok := r.Mirrors[host]; ok {
				endpoints = append(endpoints, m.Endpoints...)
			} else if m, ok := r.Mirrors["*"]; ok {
				endpoints = append(endpoints, m.Endpoints...)
			}
		}
		endpoints = append(endpoints, defaultEndpoint(host))
		var out []docker.RegistryHost
		for _, e := range endpoints {
			u, err := url.Parse(e)
			if err != nil || u.Host == "" {
				return nil, fmt.Errorf("images: bad registry endpoint %q", e)
			}
			cfg := RegistryConfig{}
			if r != nil {
				cfg = r.Configs[u.Host]
			}
			tr := &http.Transport{Proxy: http.ProxyFromEnvironment, TLSHandshakeTimeout: 10 * time.Second, ResponseHeaderTimeout: 30 * time.Second}
			if cfg.TLS != nil && cfg.TLS.InsecureSkipVerify {
				tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
			}
			hc := &http.Client{Transport: tr}
			endpointHost := u.Host
			auth := cfg.Auth
			authorizer := docker.NewDockerAuthorizer(docker.WithAuthClient(hc), docker.WithAuthCreds(func(string) (string, string, error) {
				if auth != nil {
					return authCreds(auth)
				}
				if creds != nil {
					for _, h := range []string{endpointHost, host} {
						if u, p, ok := creds(h); ok {
							return u, p, nil
						}
					}
				}
				return "", "", nil
			}))
			path := strings.TrimSuffix(u.Path, "/")
			if path == "" {
				path = "/v2"
			}
			out = append(out, docker.RegistryHost{
				Client:       hc,
				Authorizer:   authorizer,
				Host:         u.Host,
				Scheme:       u.Scheme,
				Path:         path,
				Capabilities: docker.HostCapabilityPull | docker.HostCapabilityResolve,
			})
		}
		return out, nil
	}
}

func defaultEndpoint(host string) string {
	switch {
	case host == "docker.io":
		return "https://registry-1.docker.io"
	case strings.HasPrefix(host, "localhost:") || host == "localhost" || strings.HasPrefix(host, "127."):
		return "http://" + host
	}
	return "https://" + host
}

func authCreds(a *RegistryAuth) (string, string, error) {
	if a.Auth != "" && a.Username == "" {
		dec, err := decodeAuth(a.Auth)
		if err != nil {
			return "", "", err
		}
		user, pass, _ := strings.Cut(dec, ":")
		return user, pass, nil
	}
	return a.Username, a.Password, nil
}

package images

import (
	"encoding/base64"
	"encoding/json"
	"strings"
)

// DockerConfigCredentials reads the credentials of kubernetes.io/
// dockerconfigjson (".dockerconfigjson") and kubernetes.io/dockercfg
// (".dockercfg") secrets' data, as imagePullSecrets carry them.
func DockerConfigCredentials(secretData []map[string][]byte) Credentials {
	type entry struct {
		Username string `json:"username"`
		Password string `json:"password"`
		Auth     string `json:"auth"`
	}
	byHost := map[string]entry{}
	for _, data := range secretData {
		if raw, ok := data[".dockerconfigjson"]; ok {
			var cfg struct {
				Auths map[string]entry `json:"auths"`
			}
			if json.Unmarshal(raw, &cfg) == nil {
				for h, e := range cfg.Auths {
					byHost[normalizeHost(h)] = e
				}
			}
		}
		if raw, ok := data[".dockercfg"]; ok {
			var cfg map[string]entry
			if json.Unmarshal(raw, &cfg) == nil {
				for h, e := range cfg {
					byHost[normalizeHost(h)] = e
				}
			}
		}
	}
	return func(host string) (string, string, bool) {
		e, ok := byHost[normalizeHost(host)]
		if !ok {
			return "", "", false
		}
		if e.Username == "" && e.Auth != "" {
			if dec, err := decodeAuth(e.Auth); err == nil {
				u, p, _ := strings.Cut(dec, ":")
				return u, p, true
			}
		}
		return e.Username, e.Password, true
	}
}

// normalizeHost strips a scheme and path from a docker config key and maps
// Docker Hub's aliases to docker.io.
func normalizeHost(h string) string {
	h = strings.TrimPrefix(strings.TrimPrefix(h, "https://"), "http://")
	h, _, _ = strings.Cut(h, "/")
	switch h {
	case "index.docker.io", "registry-1.docker.io":
		return "docker.io"
	}
	return h
}

func decodeAuth(s string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	return string(b), err
}

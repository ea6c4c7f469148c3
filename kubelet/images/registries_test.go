package images

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"
)

func TestLoadRegistries(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "registries.yaml")
	if err := os.WriteFile(good, []byte(`mirrors:
  docker.io:
    endpoint:
      - "http://127.0.0.1:5000"
configs:
  "127.0.0.1:5000":
    auth:
      username: user
      password: pass
    tls:
      insecure_skip_verify: true
`), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("mirrors: [not, a, map]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		path    string
		wantErr bool
		check   func(*testing.T, *Registries)
	}{
		{"k3s format", good, false, func(t *testing.T, r *Registries) {
			if got := r.Mirrors["docker.io"].Endpoints; len(got) != 1 || got[0] != "http://127.0.0.1:5000" {
				t.Errorf("mirror endpoints = %v", got)
			}
			c := r.Configs["127.0.0.1:5000"]
			if c.Auth == nil || c.Auth.Username != "user" || c.TLS == nil || !c.TLS.InsecureSkipVerify {
				t.Errorf("config = %+v", c)
			}
		}},
		{"a missing file is no configuration", filepath.Join(dir, "none.yaml"), false, func(t *testing.T, r *Registries) {
			if len(r.Mirrors) != 0 {
				t.Errorf("mirrors = %v", r.Mirrors)
			}
		}},
		{"a malformed file is an error", bad, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := LoadRegistries(tt.path)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

func TestMirrorsComeBeforeTheRegistryItself(t *testing.T) {
	r := &Registries{Mirrors: map[string]Mirror{"docker.io": {Endpoints: []string{"http://127.0.0.1:5000/prefix"}}}}
	hosts, err := r.hosts(nil)("docker.io")
	if err != nil {
		t.Fatal(err)
	}
	if len(hosts) != 2 || hosts[0].Host != "127.0.0.1:5000" || hosts[0].Scheme != "http" || hosts[0].Path != "/prefix" || hosts[1].Host != "registry-1.docker.io" {
		t.Errorf("hosts = %+v", hosts)
	}
	local, _ := (&Registries{}).hosts(nil)("127.0.0.1:5000")
	if len(local) != 1 || local[0].Scheme != "http" {
		t.Errorf("a loopback registry is plain HTTP by default: %+v", local)
	}
}

func TestDockerConfigCredentials(t *testing.T) {
	auth := base64.StdEncoding.EncodeToString([]byte("bob:hunter2"))
	creds := DockerConfigCredentials([]map[string][]byte{
		{".dockerconfigjson": []byte(`{"auths":{"https://index.docker.io/v1/":{"username":"alice","password":"pw"},"127.0.0.1:5000":{"auth":"` + auth + `"}}}`)},
	})
	tests := []struct {
		host, user, pass string
		ok               bool
	}{
		{"docker.io", "alice", "pw", true},
		{"127.0.0.1:5000", "bob", "hunter2", true},
		{"quay.io", "", "", false},
	}
	for _, tt := range tests {
		u, p, ok := creds(tt.host)
		if u != tt.user || p != tt.pass || ok != tt.ok {
			t.Errorf("creds(%s) = %q %q %v, want %q %q %v", tt.host, u, p, ok, tt.user, tt.pass, tt.ok)
		}
	}
}

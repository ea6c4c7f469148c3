package pki

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// KubeconfigName is the cluster, user and context name in the written
// kubeconfig. k3s uses "default" too, so scripts written for it work.
const KubeconfigName = "default"

// Kubeconfig describes an admin kubeconfig with every credential embedded,
// so the file works on its own when copied to another machine.
type Kubeconfig struct {
	// Server is the API URL, e.g. https://127.0.0.1:6443.
	Server    string
	CACertPEM []byte
	// CertPEM and KeyPEM are the client credential.
	CertPEM []byte
	KeyPEM  []byte
}

// WriteKubeconfig writes kc to path with mode 0600, replacing the file
// atomically; the parent directory is created (0755) when missing. The
// file holds a private key, hence the mode even on an existing file.
func WriteKubeconfig(path string, kc Kubeconfig) error {
	if path == "" {
		return errors.New("pki: kubeconfig path is required")
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[KubeconfigName] = &clientcmdapi.Cluster{
		Server:                   kc.Server,
		CertificateAuthorityData: kc.CACertPEM,
	}
	cfg.AuthInfos[KubeconfigName] = &clientcmdapi.AuthInfo{
		ClientCertificateData: kc.CertPEM,
		ClientKeyData:         kc.KeyPEM,
	}
	cfg.Contexts[KubeconfigName] = &clientcmdapi.Context{
		Cluster:  KubeconfigName,
		AuthInfo: KubeconfigName,
	}
	cfg.CurrentContext = KubeconfigName
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return fmt.Errorf("pki: encode kubeconfig: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if err := writeFileAtomic(path, data, 0o600); err != nil {
		return fmt.Errorf("pki: write kubeconfig: %w", err)
	}
	return nil
}

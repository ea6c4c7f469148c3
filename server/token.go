package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/tinykube/tinykube/apiserver/authn"
	"github.com/tinykube/tinykube/pki"
)

// TokenOptions are the settings of a new join token.
type TokenOptions struct {
	// TTL is how long the token is valid; 0 is for ever.
	TTL         time.Duration
	Description string
	// Groups are extra groups the token authenticates in, each
	// system:bootstrappers:...
	Groups []string
}

// CreateJoinToken creates a bootstrap token valid for o.TTL and returns it
// as a join token carrying the hash of the CA that cfg trusts: the cluster
// CA.
func CreateJoinToken(ctx context.Context, cfg *rest.Config, o TokenOptions, now time.Time) (string, error) {
	if o.TTL < 0 {
		return "", errors.New("--ttl must not be negative")
	}
	caPEM := cfg.CAData
	if len(caPEM) == 0 && cfg.CAFile != "" {
		var err error
		if caPEM, err = os.ReadFile(cfg.CAFile); err != nil {
			return "", err
		}
	}
	if len(caPEM) == 0 {
		return "", errors.New("the kubeconfig names no cluster CA, so the join token could not carry its hash")
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", err
	}
	credential, err := authn.NewBootstrapToken()
	if err != nil {
		return "", err
	}
	var expires time.Time
	if o.TTL > 0 {
		expires = now.Add(o.TTL)
	}
	description := o.Description
	if description == "" {
		description = "Join token created by `tinykube token create`."
	}
	secret, err := authn.BootstrapTokenSecret(credential, expires, description, o.Groups)
	if err != nil {
		return "", err
	}
	if _, err := client.CoreV1().Secrets(secret.Namespace).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		return "", fmt.Errorf("creating the bootstrap token: %w", err)
	}
	return pki.FormatJoinToken(caPEM, credential), nil
}

package authn

import (
	"context"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/rest"
)

// ClientLookup is a [ServiceAccountTokensConfig.Lookup] that reads the
// objects through an API client (core/v1, for example
// kubernetes.Interface.CoreV1().RESTClient()): for an authenticator
// that runs outside the API server, and for tests.
func ClientLookup(core rest.Interface) func(ctx context.Context, namespace, resource, name string) (string, error) {
	return func(ctx context.Context, namespace, resource, name string) (string, error) {
		obj, err := core.Get().Namespace(namespace).Resource(resource).Name(name).Do(ctx).Get()
		if err != nil {
			return "", err
		}
		m, err := meta.Accessor(obj)
		if err != nil {
			return "", err
		}
		return string(m.GetUID()), nil
	}
}

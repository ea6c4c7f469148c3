package rootcacertpublisher

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/tinykube/tinykube/controller/internal/workloop"
)

// Names and texts, as upstream.
const (
	// Name is the controller's name, as upstream's.
	Name = "root-ca-certificate-publisher-controller"
	// ConfigMapName is the ConfigMap every namespace gets.
	ConfigMapName = "kube-root-ca.crt"
	// Key is the ConfigMap key holding the CA bundle.
	Key                   = "ca.crt"
	DescriptionAnnotation = "kubernetes.io/description"
	Description           = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. " +
		"No other usage is guaranteed across distributions of Kubernetes clusters."
)

// Config wires the publisher.
type Config struct {
	Client    kubernetes.Interface
	Informers informers.SharedInformerFactory
	// RootCA is the cluster CA bundle, PEM (required; must hold at least
	// one certificate).
	RootCA []byte
	// Workers is how many keys sync at once (upstream's --concurrent-*
	// flag); 0 means 1.
	Workers int
	// Logger is the controller's; nil discards.
	Logger *slog.Logger
}

// Controller publishes the root CA to every namespace.
type Controller struct {
	logger     *slog.Logger
	workers    int
	client     kubernetes.Interface
	rootCA     string
	namespaces corelisters.NamespaceLister
	configMaps corelisters.ConfigMapLister
	synced     []cache.InformerSynced
	queue      workqueue.TypedRateLimitingInterface[string]
}

// New validates cfg and registers the informers; the caller starts
// cfg.Informers after New.
func New(cfg Config) (*Controller, error) {
	if cfg.Client == nil || cfg.Informers == nil {
		return nil, errors.New("rootcacertpublisher: Client and Informers are required")
	}
	if err := validPEM(cfg.RootCA); err != nil {
		return nil, fmt.Errorf("rootcacertpublisher: RootCA: %w", err)
	}
	ns := cfg.Informers.Core().V1().Namespaces()
	cms := cfg.Informers.Core().V1().ConfigMaps()
	c := &Controller{
		logger: cfg.Logger, workers: cfg.Workers,
		client:     cfg.Client,
		rootCA:     string(cfg.RootCA),
		namespaces: ns.Lister(),
		configMaps: cms.Lister(),
		synced:     []cache.InformerSynced{ns.Informer().HasSynced, cms.Informer().HasSynced},
		queue:      workloop.NewQueue[string]("root_ca_cert_publisher", nil),
	}
	onNamespace := func(obj any) {
		if n, ok := obj.(*corev1.Namespace); ok && (n.Status.Phase == corev1.NamespaceActive || n.Status.Phase == "") {
			c.queue.Add(n.Name)
		}
	}
	if _, err := ns.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    onNamespace,
		UpdateFunc: func(_, obj any) { onNamespace(obj) },
	}); err != nil {
		return nil, err
	}
	onConfigMap := func(obj any) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		if cm, ok := obj.(*corev1.ConfigMap); ok && cm.Name == ConfigMapName {
			c.queue.Add(cm.Namespace)
		}
	}
	if _, err := cms.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		UpdateFunc: func(_, obj any) { onConfigMap(obj) },
		DeleteFunc: onConfigMap,
	}); err != nil {
		return nil, err
	}
	return c, nil
}

// validPEM checks that b holds at least one certificate and nothing else.
func validPEM(b []byte) error {
	n := 0
	for rest := b; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			if len(strings.TrimSpace(string(rest))) > 0 {
				return errors.New("trailing data that is not PEM")
			}
			break
		}
		if block.Type != "CERTIFICATE" {
			return fmt.Errorf("PEM block %q, want CERTIFICATE", block.Type)
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return err
		}
		n++
	}
	if n == 0 {
		return errors.New("no certificate")
	}
	return nil
}

// Run works the queue until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	return workloop.Loop[string]{Logger: c.logger, Workers: c.workers, KeyKind: "namespace",
		Queue: c.queue, Synced: c.synced, Sync: c.sync}.Run(ctx)
}

// sync makes the namespace's kube-root-ca.crt hold exactly the CA bundle
// and the description annotation.
func (c *Controller) sync(ctx context.Context, namespace string) error {
	ns, err := c.namespaces.Get(namespace)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if ns.DeletionTimestamp != nil || (ns.Status.Phase != corev1.NamespaceActive && ns.Status.Phase != "") {
		return nil
	}
	want := map[string]string{Key: c.rootCA}
	cm, err := c.configMaps.ConfigMaps(namespace).Get(ConfigMapName)
	if apierrors.IsNotFound(err) {
		_, err = c.client.CoreV1().ConfigMaps(namespace).Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: ConfigMapName, Annotations: map[string]string{DescriptionAnnotation: Description}},
			Data:       want,
		}, metav1.CreateOptions{})
		if apierrors.IsNotFound(err) || namespaceTerminating(err) {
			// The namespace is gone or going: nothing to retry.
			return nil
		}
		return err
	}
	if err != nil {
		return err
	}
	// As upstream, only data and the description are restored; labels,
	// other annotations and binaryData are the user's.
	if maps.Equal(cm.Data, want) && cm.Annotations[DescriptionAnnotation] != "" {
		return nil
	}
	upd := cm.DeepCopy()
	upd.Data = want
	if upd.Annotations == nil {
		upd.Annotations = map[string]string{}
	}
	upd.Annotations[DescriptionAnnotation] = Description
	_, err = c.client.CoreV1().ConfigMaps(namespace).Update(ctx, upd, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		// Deleted meanwhile: its delete event queues the namespace again.
		return nil
	}
	return err
}

func namespaceTerminating(err error) bool {
	return apierrors.IsForbidden(err) && (apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) ||
		strings.Contains(err.Error(), "because it is being terminated"))
}

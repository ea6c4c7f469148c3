package clusterroleaggregation

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	rbacv1ac "k8s.io/client-go/applyconfigurations/rbac/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	rbaclisters "k8s.io/client-go/listers/rbac/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/tinykube/tinykube/controller/internal/workloop"
)

// FieldManager is the manager of the rules the controller writes, as
// upstream names it.
const FieldManager = Name

// Name is the controller's name, as upstream's.
const Name = "clusterrole-aggregation-controller"

// Config wires the controller.
type Config struct {
	Client    kubernetes.Interface
	Informers informers.SharedInformerFactory
	// Workers is how many keys sync at once (upstream's --concurrent-*
	// flag); 0 means 1.
	Workers int
	// Logger is the controller's; nil discards.
	Logger *slog.Logger
}

// Controller writes the aggregated rules of ClusterRoles.
type Controller struct {
	logger  *slog.Logger
	workers int
	client  kubernetes.Interface
	roles   rbaclisters.ClusterRoleLister
	synced  []cache.InformerSynced
	queue   workqueue.TypedRateLimitingInterface[string]
}

// New validates cfg and registers the informer; the caller starts
// cfg.Informers after New.
func New(cfg Config) (*Controller, error) {
	if cfg.Client == nil || cfg.Informers == nil {
		return nil, errors.New("clusterroleaggregation: Client and Informers are required")
	}
	roles := cfg.Informers.Rbac().V1().ClusterRoles()
	c := &Controller{
		logger: cfg.Logger, workers: cfg.Workers,
		client: cfg.Client,
		roles:  roles.Lister(),
		synced: []cache.InformerSynced{roles.Informer().HasSynced},
		queue:  workloop.NewQueue[string]("ClusterRoleAggregator", nil),
	}
	// Any change to any ClusterRole may change what a selector matches or
	// what a matched role holds: every aggregating role is looked at
	// again, as upstream does.
	enqueueAll := func(any) { c.enqueueAggregating() }
	if _, err := roles.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueueAll,
		UpdateFunc: func(_, obj any) { enqueueAll(obj) },
		DeleteFunc: enqueueAll,
	}); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Controller) enqueueAggregating() {
	all, err := c.roles.List(labels.Everything())
	if err != nil {
		return
	}
	for _, r := range all {
		if r.AggregationRule != nil {
			c.queue.Add(r.Name)
		}
	}
}

// Run works the queue until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	return workloop.Loop[string]{Logger: c.logger, Workers: c.workers, KeyKind: "clusterrole",
		Queue: c.queue, Synced: c.synced, Sync: c.sync}.Run(ctx)
}

// sync makes the ClusterRole's rules the union of its aggregated roles'.
func (c *Controller) sync(ctx context.Context, name string) error {
	role, err := c.roles.Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if role.AggregationRule == nil {
		return nil
	}
	rules, err := c.aggregatedRules(role)
	if err != nil {
		return err
	}
	if equality.Semantic.DeepEqual(rules, role.Rules) {
		return nil
	}
	_, err = c.client.RbacV1().ClusterRoles().Apply(ctx, rbacv1ac.ClusterRole(name).WithRules(applyRules(rules)...),
		metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	if apierrors.IsUnsupportedMediaType(err) {
		// A server without server-side apply: update instead, as
		// upstream falls back.
		upd := role.DeepCopy()
		upd.Rules = rules
		_, err = c.client.RbacV1().ClusterRoles().Update(ctx, upd, metav1.UpdateOptions{})
	}
	if apierrors.IsNotFound(err) {
		// Deleted meanwhile: nothing to aggregate into.
		return nil
	}
	return err
}

// aggregatedRules is the union of the rules of the ClusterRoles role's
// selectors match (role itself excluded): selector by selector, matched
// roles by name, each rule the first time it is seen.
func (c *Controller) aggregatedRules(role *rbacv1.ClusterRole) ([]rbacv1.PolicyRule, error) {
	rules := []rbacv1.PolicyRule{}
	for i := range role.AggregationRule.ClusterRoleSelectors {
		sel, err := metav1.LabelSelectorAsSelector(&role.AggregationRule.ClusterRoleSelectors[i])
		if err != nil {
			// An invalid selector matches nothing; validation rejects
			// them, so this is a role from before it did.
			continue
		}
		matched, err := c.roles.List(sel)
		if err != nil {
			return nil, err
		}
		slices.SortFunc(matched, func(a, b *rbacv1.ClusterRole) int { return strings.Compare(a.Name, b.Name) })
		for _, m := range matched {
			if m.Name == role.Name {
				continue
			}
			for _, r := range m.Rules {
				if !slices.ContainsFunc(rules, func(have rbacv1.PolicyRule) bool { return equality.Semantic.DeepEqual(have, r) }) {
					rules = append(rules, r)
				}
			}
		}
	}
	return rules, nil
}

func applyRules(rules []rbacv1.PolicyRule) []*rbacv1ac.PolicyRuleApplyConfiguration {
	out := make([]*rbacv1ac.PolicyRuleApplyConfiguration, 0, len(rules))
	for _, r := range rules {
		out = append(out, rbacv1ac.PolicyRule().WithVerbs(r.Verbs...).WithAPIGroups(r.APIGroups...).WithResources(r.Resources...).
			WithResourceNames(r.ResourceNames...).WithNonResourceURLs(r.NonResourceURLs...))
	}
	return out
}

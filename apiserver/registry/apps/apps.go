package apps

import (
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/tinykube/tinykube/apiserver/registry"
)

var appsV1 = schema.GroupVersion{Group: "apps", Version: "v1"}

// Group serves apps/v1.
type Group struct{}

// Resources are the workloads (Deployments, ReplicaSets, StatefulSets,
// DaemonSets) and ControllerRevisions.
func (Group) Resources(registry.Config) []*registry.Resource {
	var rs []*registry.Resource
	subdomain := apimachineryvalidation.NameIsDNSSubdomain
	all := []string{"all"}
	workload := func(resourceName, kind, singular string, short string, subresources ...string) *registry.Resource {
		return &registry.Resource{GVR: appsV1.WithResource(resourceName), Kind: kind, Singular: singular, Namespaced: true,
			ShortNames: []string{short}, Categories: all, Subresources: subresources,
			NameValidation: subdomain, Generation: true,
			PrepareForCreate: prepareWorkload, PrepareForUpdate: func(obj, _ runtime.Object) { prepareWorkload(obj) },
			Validate: validateWorkload}
	}
	ds := workload("daemonsets", "DaemonSet", "daemonset", "ds", "status")
	ds.Table = daemonSetTable()
	rs = append(rs, ds)
	deploy := workload("deployments", "Deployment", "deployment", "deploy", "status", "scale")
	deploy.Table = deploymentTable()
	rs = append(rs, deploy)
	replicaSets := workload("replicasets", "ReplicaSet", "replicaset", "rs", "status", "scale")
	replicaSets.Table = replicaSetTable()
	replicaSets.SelectableFields = replicaSetFields
	rs = append(rs, replicaSets)
	sts := workload("statefulsets", "StatefulSet", "statefulset", "sts", "status", "scale")
	sts.Table = statefulSetTable()
	rs = append(rs, sts)

	rs = append(rs, &registry.Resource{GVR: appsV1.WithResource("controllerrevisions"), Kind: "ControllerRevision", Singular: "controllerrevision", Namespaced: true,
		NameValidation: subdomain, Table: controllerRevisionTable()})
	return rs
}

package kubelet

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// masterService is the API server's Service in the default namespace,
// whose variables every pod gets.
const masterService = "kubernetes"

// serviceEnv is the Service variables a container of a pod in ns gets, as
// upstream's kubelet: those of default/kubernetes always, and with
// enableServiceLinks those of every Service in ns, one with the same name
// in ns winning. Services without a cluster IP (headless) give none.
func serviceEnv(services []*corev1.Service, ns string, enableServiceLinks bool) map[string]string {
	chosen := map[string]*corev1.Service{}
	for _, svc := range services {
		if !serviceIPSet(svc) {
			continue
		}
		switch {
		case svc.Namespace == ns && enableServiceLinks:
			chosen[svc.Name] = svc
		case svc.Namespace == metav1.NamespaceDefault && svc.Name == masterService:
			if _, ok := chosen[svc.Name]; !ok {
				chosen[svc.Name] = svc
			}
		}
	}
	env := map[string]string{}
	for _, svc := range chosen {
		for _, e := range serviceVariables(svc) {
			env[e.Name] = e.Value
		}
	}
	return env
}

func serviceIPSet(svc *corev1.Service) bool {
	return svc.Spec.ClusterIP != "" && svc.Spec.ClusterIP != corev1.ClusterIPNone
}

// serviceVariables are one Service's variables: NAME_SERVICE_HOST,
// NAME_SERVICE_PORT (the first port), NAME_SERVICE_PORT_PORTNAME for each
// named port, and Docker's link variables.
func serviceVariables(svc *corev1.Service) []corev1.EnvVar {
	if len(svc.Spec.Ports) == 0 {
		return nil
	}
	prefix := envVarName(svc.Name)
	out := []corev1.EnvVar{
		{Name: prefix + "_SERVICE_HOST", Value: svc.Spec.ClusterIP},
		{Name: prefix + "_SERVICE_PORT", Value: strconv.Itoa(int(svc.Spec.Ports[0].Port))},
	}
	for _, p := range svc.Spec.Ports {
		if p.Name != "" {
			out = append(out, corev1.EnvVar{Name: prefix + "_SERVICE_PORT_" + envVarName(p.Name), Value: strconv.Itoa(int(p.Port))})
		}
	}
	return append(out, linkVariables(prefix, svc)...)
}

// linkVariables are Docker's link variables: NAME_PORT for the first port
// and NAME_PORT_NUM_PROTO{,_PROTO,_PORT,_ADDR} for each.
func linkVariables(prefix string, svc *corev1.Service) []corev1.EnvVar {
	var out []corev1.EnvVar
	for i, p := range svc.Spec.Ports {
		proto := strings.ToLower(string(corev1.ProtocolTCP))
		if p.Protocol != "" {
			proto = strings.ToLower(string(p.Protocol))
		}
		url := proto + "://" + net.JoinHostPort(svc.Spec.ClusterIP, strconv.Itoa(int(p.Port)))
		if i == 0 {
			out = append(out, corev1.EnvVar{Name: prefix + "_PORT", Value: url})
		}
		portPrefix := fmt.Sprintf("%s_PORT_%d_%s", prefix, p.Port, strings.ToUpper(proto))
		out = append(out,
			corev1.EnvVar{Name: portPrefix, Value: url},
			corev1.EnvVar{Name: portPrefix + "_PROTO", Value: proto},
			corev1.EnvVar{Name: portPrefix + "_PORT", Value: strconv.Itoa(int(p.Port))},
			corev1.EnvVar{Name: portPrefix + "_ADDR", Value: svc.Spec.ClusterIP},
		)
	}
	return out
}

// envVarName is upstream's: upper case, dashes to underscores.
func envVarName(s string) string {
	return strings.ToUpper(strings.ReplaceAll(s, "-", "_"))
}

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sort"
	"strconv"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// newServiceCommand is `tinykube service url NAME [-n NS]`, as minikube
// users know it: the URL of each port of a NodePort or LoadBalancer
// Service on a node's address.
func newServiceCommand(stdout io.Writer) *cobra.Command {
	svc := &cobra.Command{Use: "service", Short: "Show how to reach Services from outside the cluster"}
	commandGroup(svc)
	var namespace, kubeconfig string
	url := &cobra.Command{
		Use:   "url NAME",
		Short: "Print http://NODE_IP:NODE_PORT for each port of a NodePort or LoadBalancer Service",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := restConfigFrom(kubeconfig)
			if err != nil {
				return err
			}
			client, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				return err
			}
			urls, err := serviceURLs(cmd.Context(), client, namespace, args[0])
			if err != nil {
				return err
			}
			for _, u := range urls {
				fmt.Fprintln(stdout, u)
			}
			return nil
		},
	}
	url.Flags().StringVarP(&namespace, "namespace", "n", "default", "namespace of the Service")
	url.Flags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig to use (default: $KUBECONFIG, else "+defaultKubeconfig+")")
	svc.AddCommand(url)
	return svc
}

// serviceURLs returns http://NODE_IP:NODE_PORT for each port of the
// Service, NODE_IP being the address of the first ready node by name.
func serviceURLs(ctx context.Context, c kubernetes.Interface, namespace, name string) ([]string, error) {
	svc, err := c.CoreV1().Services(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	if svc.Spec.Type != corev1.ServiceTypeNodePort && svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return nil, fmt.Errorf("service %s/%s is of type %s: only NodePort and LoadBalancer Services have a URL", namespace, name, svc.Spec.Type)
	}
	nodes, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	sort.Slice(nodes.Items, func(i, j int) bool { return nodes.Items[i].Name < nodes.Items[j].Name })
	var ip netip.Addr
	for _, n := range nodes.Items {
		if a, ok := readyNodeAddress(&n); ok {
			ip = a
			break
		}
	}
	if !ip.IsValid() {
		return nil, fmt.Errorf("no ready node with an address: service %s/%s cannot be reached yet", namespace, name)
	}
	var urls []string
	for _, p := range svc.Spec.Ports {
		if p.NodePort != 0 {
			urls = append(urls, "http://"+net.JoinHostPort(ip.String(), strconv.Itoa(int(p.NodePort))))
		}
	}
	return urls, nil
}

func readyNodeAddress(n *corev1.Node) (netip.Addr, bool) {
	ready := false
	for _, c := range n.Status.Conditions {
		ready = ready || (c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue)
	}
	if !ready {
		return netip.Addr{}, false
	}
	for _, t := range []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeExternalIP} {
		for _, a := range n.Status.Addresses {
			if ip, err := netip.ParseAddr(a.Address); err == nil && a.Type == t {
				return ip, true
			}
		}
	}
	return netip.Addr{}, false
}

package nodenet_test

import (
	"context"
	"log"
	"net/netip"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"

	"github.com/tinykube/tinykube/nodenet"
)

// How a node wires nodenet: its own client (it patches only its own Node),
// a Node informer it starts after New, and Run until the node stops. The
// kubelet on that node then runs its CNI bridge without ipMasq, and with
// nodenet.VXLANMTU as the pods' MTU when the backend is vxlan.
func ExampleNew() {
	var client kubernetes.Interface // the node's client
	ctx := context.Background()

	backend, err := nodenet.ParseBackend("host-gw") // --flannel-backend
	if err != nil {
		log.Fatal(err)
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	nn, err := nodenet.New(nodenet.Config{
		Nodes:       factory.Core().V1().Nodes(),
		Client:      client,
		NodeName:    "node-2",
		NodeIP:      netip.MustParseAddr("192.0.2.2"),
		ClusterCIDR: netip.MustParsePrefix("10.42.0.0/16"),
		Backend:     backend,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer nn.Close()
	factory.Start(ctx.Done())
	go func() {
		if err := nn.Run(ctx); err != nil {
			log.Print(err)
		}
	}()
	<-nn.Ready()
}

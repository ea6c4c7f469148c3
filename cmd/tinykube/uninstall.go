package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"github.com/vishvananda/netlink"
	"sigs.k8s.io/knftables"

	"github.com/tinykube/tinykube/nodenet"
	"github.com/tinykube/tinykube/proxy"
	"github.com/tinykube/tinykube/server"
)

func newUninstallCommand(stdout io.Writer) *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Remove what tinykube set up in the host's network: nftables tables, routes, the VXLAN device",
		Long: `Remove the network state a tinykube node leaves behind when it stops
without --flush-rules: the proxy's and the node routing's nftables tables,
the routes to other nodes' pods and the VXLAN device. Pods still running
keep their pod bridge and addresses; the data dir (certificates, the
store, images) is left alone. The server or agent must be stopped first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := refuseWhileRunning(dataDir); err != nil {
				return err
			}
			return uninstall(cmd.Context(), stdout)
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "/var/lib/tinykube", "the node's data dir, to check that no server uses it")
	return cmd
}

// refuseWhileRunning fails when a server holds the data dir's store: its
// proxy would only put the rules back.
func refuseWhileRunning(dataDir string) error {
	path := server.StorePath(dataDir)
	if _, err := os.Stat(path); err != nil {
		return nil // no server data here: an agent-only host, or nothing
	}
	store, err := server.OpenStore(path)
	if err != nil {
		return fmt.Errorf("a tinykube server seems to be running on %s (stop it first): %w", dataDir, err)
	}
	return store.Close()
}

// uninstall removes tinykube's tables, routes and devices; what is not
// there is fine.
func uninstall(ctx context.Context, stdout io.Writer) error {
	var errs []error
	for _, t := range []struct {
		family knftables.Family
		name   string
	}{{knftables.InetFamily, proxy.TableName}, {knftables.IPv4Family, nodenet.TableName}} {
		nft, err := knftables.New(t.family, t.name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, err := nft.List(ctx, "chains"); knftables.IsNotFound(err) {
			continue
		}
		tx := nft.NewTransaction()
		tx.Delete(&knftables.Table{})
		if err := nft.Run(ctx, tx); err != nil {
			errs = append(errs, fmt.Errorf("deleting table %s %s: %w", t.family, t.name, err))
			continue
		}
		fmt.Fprintf(stdout, "removed nftables table %s %s\n", t.family, t.name)
	}
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Protocol: nodenet.RouteProtocol}, netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		errs = append(errs, fmt.Errorf("listing routes: %w", err))
	}
	for _, r := range routes {
		if err := netlink.RouteDel(&r); err != nil {
			errs = append(errs, fmt.Errorf("deleting route %s: %w", r.Dst, err))
			continue
		}
		fmt.Fprintf(stdout, "removed route %s\n", r.Dst)
	}
	link, err := netlink.LinkByName(nodenet.VXLANDevice)
	var notFound netlink.LinkNotFoundError
	switch {
	case errors.As(err, &notFound):
	case err != nil:
		errs = append(errs, fmt.Errorf("looking up %s: %w", nodenet.VXLANDevice, err))
	default:
		if err := netlink.LinkDel(link); err != nil {
			errs = append(errs, fmt.Errorf("deleting %s: %w", nodenet.VXLANDevice, err))
		} else {
			fmt.Fprintf(stdout, "removed device %s\n", nodenet.VXLANDevice)
		}
	}
	return errors.Join(errs...)
}

package nodenet

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"sigs.k8s.io/knftables"
)

// TableName is nodenet's nftables table, in family ip.
const TableName = "tinykube-nodenet"

// chainPostrouting is the table's only chain: nat postrouting at srcnat.
const chainPostrouting = "postrouting"

// multicast is never masqueraded (as flannel): it does not leave the link.
const multicast = "224.0.0.0/4"

// masqueradeRule is the one rule of chainPostrouting: pod traffic leaving the
// cluster CIDR is masqueraded to the node's address; traffic between pods,
// on this node or another, keeps its source. own is this node's podCIDR,
// named apart only when it lies outside the cluster CIDR.
func masqueradeRule(cluster, own netip.Prefix) string {
	keep := []string{cluster.String()}
	if own.IsValid() && !contains(cluster, own) {
		keep = append(keep, own.String())
	}
	keep = append(keep, multicast)
	return fmt.Sprintf("ip saddr %s ip daddr != { %s } masquerade fully-random", cluster, strings.Join(keep, ", "))
}

// syncMasquerade replaces the table atomically when its rule changed, or
// always when full.
func (n *NodeNet) syncMasquerade(ctx context.Context, own netip.Prefix, full bool) error {
	rule := masqueradeRule(n.cfg.ClusterCIDR, own)
	if !full && rule == n.appliedRules {
		return nil
	}
	tx := n.cfg.NFT.NewTransaction()
	// add + delete + add replaces the table whatever state it was in.
	tx.Add(&knftables.Table{})
	tx.Delete(&knftables.Table{})
	tx.Add(&knftables.Table{Comment: knftables.PtrTo("tinykube nodenet: masquerade pod traffic leaving the cluster")})
	tx.Add(&knftables.Chain{
		Name:     chainPostrouting,
		Type:     knftables.PtrTo(knftables.NATType),
		Hook:     knftables.PtrTo(knftables.PostroutingHook),
		Priority: knftables.PtrTo(knftables.SNATPriority),
	})
	tx.Add(&knftables.Rule{Chain: chainPostrouting, Rule: rule})
	if err := n.cfg.NFT.Run(ctx, tx); err != nil {
		n.appliedRules = ""
		return fmt.Errorf("writing nftables table %s: %w", TableName, err)
	}
	n.appliedRules = rule
	return nil
}

// deleteMasquerade removes the table, if there is one.
func (n *NodeNet) deleteMasquerade(ctx context.Context) error {
	tx := n.cfg.NFT.NewTransaction()
	tx.Add(&knftables.Table{})
	tx.Delete(&knftables.Table{})
	if err := n.cfg.NFT.Run(ctx, tx); err != nil {
		return fmt.Errorf("deleting nftables table %s: %w", TableName, err)
	}
	n.appliedRules = ""
	return nil
}

// contains reports whether inner lies wholly inside outer.
func contains(outer, inner netip.Prefix) bool {
	return outer.Bits() <= inner.Bits() && outer.Contains(inner.Addr())
}

package nodenet

import (
	"context"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/knftables"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestMasqueradeTableGolden(t *testing.T) {
	for _, tc := range []struct {
		name   string
		golden string
		own    netip.Prefix
	}{
		{"node podCIDR inside the cluster CIDR", "masquerade.nft", netip.MustParsePrefix("10.42.1.0/24")},
		{"node podCIDR outside the cluster CIDR", "masquerade-own-outside.nft", netip.MustParsePrefix("10.99.0.0/24")},
		{"node without a podCIDR yet", "masquerade.nft", netip.Prefix{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := knftables.NewFake(knftables.IPv4Family, TableName)
			n := &NodeNet{cfg: Config{NFT: fake, ClusterCIDR: netip.MustParsePrefix(DefaultClusterCIDR)}}
			if err := n.syncMasquerade(context.Background(), tc.own, true); err != nil {
				t.Fatal(err)
			}
			got := fake.Dump()
			path := filepath.Join("testdata", tc.golden)
			if *update && tc.own.IsValid() {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("ruleset differs from %s (-update rewrites it):\n%s", path, got)
			}
		})
	}
}

func TestMasqueradeTableRewrittenOnlyWhenChangedOrFull(t *testing.T) {
	fake := knftables.NewFake(knftables.IPv4Family, TableName)
	n := &NodeNet{cfg: Config{NFT: fake, ClusterCIDR: netip.MustParsePrefix(DefaultClusterCIDR)}}
	ctx := context.Background()
	own := netip.MustParsePrefix("10.42.1.0/24")
	if err := n.syncMasquerade(ctx, own, false); err != nil {
		t.Fatal(err)
	}
	// Someone flushes the table: a partial sync leaves it, a full one restores it.
	tx := fake.NewTransaction()
	tx.Delete(&knftables.Table{})
	if err := fake.Run(ctx, tx); err != nil {
		t.Fatal(err)
	}
	if err := n.syncMasquerade(ctx, own, false); err != nil {
		t.Fatal(err)
	}
	if fake.Table != nil {
		t.Fatal("a partial sync with an unchanged rule rewrote the table")
	}
	if err := n.syncMasquerade(ctx, own, true); err != nil {
		t.Fatal(err)
	}
	if fake.Table == nil || len(fake.Table.Chains[chainPostrouting].Rules) != 1 {
		t.Fatalf("a full sync did not restore the table:\n%s", fake.Dump())
	}
}

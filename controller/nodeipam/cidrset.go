package nodeipam

import (
	"errors"
	"fmt"
	"math/big"
	"net/netip"
)

// ErrFull: every range of the cluster CIDR is taken.
var ErrFull = errors.New("nodeipam: no CIDR left in the cluster CIDR")

// cidrSet hands out the subnets of one size inside a cluster CIDR. It is
// not safe for concurrent use; the controller guards it.
type cidrSet struct {
	cluster netip.Prefix
	size    int    // prefix length of one node's range
	count   uint64 // number of ranges
	used    map[uint64]bool
	next    uint64 // where the search for a free range starts
}

func newCIDRSet(cluster netip.Prefix, size int) (*cidrSet, error) {
	cluster = cluster.Masked()
	if !cluster.IsValid() {
		return nil, errors.New("nodeipam: cluster CIDR is not set")
	}
	if size < cluster.Bits() || size > cluster.Addr().BitLen() {
		return nil, fmt.Errorf("nodeipam: node CIDR mask size %d does not fit in cluster CIDR %s", size, cluster)
	}
	if size-cluster.Bits() > 24 {
		return nil, fmt.Errorf("nodeipam: node CIDR mask size %d cuts %s into more than 2^24 ranges", size, cluster)
	}
	return &cidrSet{cluster: cluster, size: size, count: 1 << (size - cluster.Bits()), used: map[uint64]bool{}}, nil
}

// subnet is the n-th range.
func (s *cidrSet) subnet(n uint64) netip.Prefix {
	base := new(big.Int).SetBytes(s.cluster.Addr().AsSlice())
	off := new(big.Int).Lsh(new(big.Int).SetUint64(n), uint(s.cluster.Addr().BitLen()-s.size))
	b := base.Add(base, off).FillBytes(make([]byte, len(s.cluster.Addr().AsSlice())))
	a, _ := netip.AddrFromSlice(b)
	return netip.PrefixFrom(a, s.size)
}

// index is the number of p in the set, or false when p is not one of its
// ranges.
func (s *cidrSet) index(p netip.Prefix) (uint64, bool) {
	if p.Bits() != s.size || !s.cluster.Contains(p.Addr()) || p.Masked() != p {
		return 0, false
	}
	a := new(big.Int).SetBytes(p.Addr().AsSlice())
	base := new(big.Int).SetBytes(s.cluster.Addr().AsSlice())
	n := a.Sub(a, base).Rsh(a, uint(s.cluster.Addr().BitLen()-s.size))
	return n.Uint64(), true
}

// allocate takes the next free range.
func (s *cidrSet) allocate() (netip.Prefix, error) {
	for i := range s.count {
		n := (s.next + i) % s.count
		if !s.used[n] {
			s.used[n] = true
			s.next = (n + 1) % s.count
			return s.subnet(n), nil
		}
	}
	return netip.Prefix{}, ErrFull
}

// occupy marks p taken; it reports false when p is not one of the set's
// ranges.
func (s *cidrSet) occupy(p netip.Prefix) bool {
	n, ok := s.index(p)
	if ok {
		s.used[n] = true
	}
	return ok
}

// release frees p.
func (s *cidrSet) release(p netip.Prefix) {
	if n, ok := s.index(p); ok {
		delete(s.used, n)
	}
}

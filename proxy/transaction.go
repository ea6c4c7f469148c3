package proxy

import (
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/knftables"
)

// ruleset is what the proxy last applied to the kernel: the fragment of
// every Service, which Service owns each shared map element, how many
// Services hold each shared set element, and how many Services use each
// shared load-balancing chain.
type ruleset struct {
	fragments map[types.NamespacedName]*fragment
	owners    map[string]types.NamespacedName // map element id -> owner
	refs      map[string]int                  // set element id -> holders
	chainRefs map[string]int                  // shared chain -> users
}

func newRuleset() *ruleset {
	return &ruleset{
		fragments: map[types.NamespacedName]*fragment{},
		owners:    map[string]types.NamespacedName{},
		refs:      map[string]int{},
		chainRefs: map[string]int{},
	}
}

// claim records that Service k holds e; it tells whether e must be added
// to the kernel. A map element belongs to the first Service that claims it
// (two Services may not send one address and port to different chains); a
// set element is shared and counted.
func (rs *ruleset) claim(k types.NamespacedName, e element) bool {
	id := e.id()
	if len(e.value) == 0 {
		n := rs.refs[id] + 1
		rs.refs[id] = n
		return n == 1
	}
	if _, taken := rs.owners[id]; taken {
		return false
	}
	if e.guard != "" && rs.owners[e.guard] != k {
		return false // the verdict leading here is another Service's
	}
	rs.owners[id] = k
	return true
}

// holds tells whether Service k holds e already.
func (rs *ruleset) holds(k types.NamespacedName, e element) bool {
	if len(e.value) == 0 {
		return true // set elements are counted, never lost
	}
	owner, ok := rs.owners[e.id()]
	return ok && owner == k
}

// release records that Service k no longer holds e; it tells whether e must
// be deleted from the kernel.
func (rs *ruleset) release(k types.NamespacedName, e element) bool {
	id := e.id()
	if len(e.value) == 0 {
		rs.refs[id]--
		if rs.refs[id] > 0 {
			return false
		}
		delete(rs.refs, id)
		return true
	}
	if rs.owners[id] != k {
		return false
	}
	delete(rs.owners, id)
	return true
}

// writeFull adds to tx the operations that replace the whole table with
// cfg's static rules and the given fragments, and records them in rs.
//
// With batch, the shared sets' and maps' elements are written a thousand to
// a command: nft parses and sends that in about half the time of one command
// per element (~90,000 elements at 5,000 Services of 10 endpoints).
func writeFull(tx *knftables.Transaction, cfg *ruleConfig, frags map[types.NamespacedName]*fragment, rs *ruleset, batch bool) {
	table := &knftables.Table{Comment: knftables.PtrTo("rules for tinykube Services")}
	// add+delete+add: one atomic replacement, whatever was there before.
	tx.Add(table)
	tx.Delete(&knftables.Table{})
	tx.Add(table)
	for _, obj := range sharedSets() {
		tx.Add(obj)
	}
	for _, bc := range baseChains {
		tx.Add(&knftables.Chain{
			Name: bc.name, Type: knftables.PtrTo(bc.typ), Hook: knftables.PtrTo(bc.hook),
			Priority: knftables.PtrTo(bc.priority),
		})
	}
	static := staticChains(cfg)
	for _, c := range static {
		tx.Add(&knftables.Chain{Name: c.name}) // no-op for base chains
	}
	for _, ip := range cfg.nodePortIPs {
		tx.Add(&knftables.Element{Set: setNodePortIPs, Key: []string{ip.String()}})
	}

	keys := sortedKeys(frags)
	n := 0
	for _, f := range frags {
		n += len(f.elements)
	}
	*rs = *newRuleset()
	rs.owners = make(map[string]types.NamespacedName, n)
	var shared []chain
	for _, k := range keys {
		for _, name := range frags[k].shared {
			rs.chainRefs[name]++
			if rs.chainRefs[name] == 1 {
				if c, ok := sharedChain(cfg, name); ok {
					shared = append(shared, c)
				}
			}
		}
	}
	sort.Slice(shared, func(i, j int) bool { return shared[i].name < shared[j].name })
	for _, c := range shared {
		tx.Add(&knftables.Chain{Name: c.name})
	}
	// Sets, maps and chains first: rules and elements refer to them.
	for _, k := range keys {
		f := frags[k]
		for _, a := range f.affinity {
			tx.Add(affinityObject(a))
		}
		for _, m := range f.backends {
			tx.Add(backendsObject(m))
			tx.Add(backendsElements(m))
		}
		for _, c := range f.chains {
			tx.Add(&knftables.Chain{Name: c.name})
		}
	}
	for _, c := range static {
		addRules(tx, c)
	}
	for _, c := range shared {
		addRules(tx, c)
	}
	for _, k := range keys {
		for _, c := range frags[k].chains {
			addRules(tx, c)
		}
	}
	bySet := map[string][]*element{}
	var sets []string
	for _, k := range keys {
		f := frags[k]
		rs.fragments[k] = f
		for i := range f.elements {
			e := &f.elements[i]
			if !rs.claim(k, *e) {
				continue
			}
			if !batch {
				tx.Add(elementObject(*e))
				continue
			}
			if _, ok := bySet[e.set]; !ok {
				sets = append(sets, e.set)
			}
			bySet[e.set] = append(bySet[e.set], e)
		}
	}
	for _, set := range sets {
		for els := range slices.Chunk(bySet[set], elementBatch) {
			tx.Add(batchElements(els))
		}
	}
}

// elementBatch is how many elements writeFull puts in one command.
const elementBatch = 1000

// batchElements writes elements of one set or map as one "add element"
// command. knftables has one Element per command, so the others ride in the
// first one's key (sets) or value (maps), as nft syntax separates elements
// with commas. The fake would store that as one element: only the real nft
// gets batches.
func batchElements(els []*element) *knftables.Element {
	first := els[0]
	var b strings.Builder
	b.Grow(64 * len(els))
	writeJoined := func(parts []string) {
		for i, p := range parts {
			if i > 0 {
				b.WriteString(" . ")
			}
			b.WriteString(p)
		}
	}
	if len(first.value) == 0 {
		for i, e := range els {
			if i > 0 {
				b.WriteString(" , ")
			}
			writeJoined(e.key)
		}
		return &knftables.Element{Set: first.set, Key: []string{b.String()}}
	}
	for i, e := range els {
		if i > 0 {
			b.WriteString(" , ")
			writeJoined(e.key)
			b.WriteString(" : ")
		}
		writeJoined(e.value)
	}
	return &knftables.Element{Map: first.set, Key: first.key, Value: []string{b.String()}}
}

// writePartial adds to tx the operations that turn the fragments of the
// changed Services in rs into the given ones (nil: the Service is gone), and
// records them in rs. Unchanged chains are not touched.
func writePartial(tx *knftables.Transaction, cfg *ruleConfig, changed map[types.NamespacedName]*fragment, rs *ruleset) {
	keys := sortedKeys(changed)
	var newShared []chain
	var deadShared []string
	var deadChains []string
	var deadSets []string
	var deadMaps []string
	var removed []element
	var added []element
	type rewrite struct {
		c      chain
		exists bool
	}
	var rewrites []rewrite

	for _, k := range keys {
		oldF, newF := rs.fragments[k], changed[k]
		if oldF == nil {
			oldF = &fragment{}
		}
		if newF == nil {
			newF = &fragment{}
		}
		oldChains := map[string][]string{}
		for _, c := range oldF.chains {
			oldChains[c.name] = c.rules
		}
		newChains := map[string]bool{}
		for _, c := range newF.chains {
			newChains[c.name] = true
			rules, exists := oldChains[c.name]
			if exists && slices.Equal(rules, c.rules) {
				continue
			}
			rewrites = append(rewrites, rewrite{c, exists})
		}
		for _, c := range oldF.chains {
			if !newChains[c.name] {
				deadChains = append(deadChains, c.name)
			}
		}
		oldSets := map[string]bool{}
		for _, a := range oldF.affinity {
			oldSets[a.name] = true
		}
		newSets := map[string]bool{}
		for _, a := range newF.affinity {
			newSets[a.name] = true
			if !oldSets[a.name] {
				tx.Add(affinityObject(a))
			}
		}
		for _, a := range oldF.affinity {
			if !newSets[a.name] {
				deadSets = append(deadSets, a.name)
			}
		}

		oldMaps := map[string][]element{}
		for _, m := range oldF.backends {
			oldMaps[m.name] = m.elements
		}
		newMaps := map[string]bool{}
		for _, m := range newF.backends {
			newMaps[m.name] = true
			old, exists := oldMaps[m.name]
			if exists && equalElements(old, m.elements) {
				continue
			}
			if exists {
				tx.Flush(backendsObject(m))
			} else {
				tx.Add(backendsObject(m))
			}
			tx.Add(backendsElements(m))
		}
		for _, m := range oldF.backends {
			if !newMaps[m.name] {
				deadMaps = append(deadMaps, m.name)
			}
		}

		for _, name := range newF.shared {
			if slices.Contains(oldF.shared, name) {
				continue
			}
			rs.chainRefs[name]++
			if rs.chainRefs[name] == 1 {
				if c, ok := sharedChain(cfg, name); ok {
					newShared = append(newShared, c)
				}
			}
		}
		for _, name := range oldF.shared {
			if slices.Contains(newF.shared, name) {
				continue
			}
			rs.chainRefs[name]--
			if rs.chainRefs[name] == 0 {
				delete(rs.chainRefs, name)
				deadShared = append(deadShared, name)
			}
		}

		oldElems := map[string]element{}
		for _, e := range oldF.elements {
			oldElems[e.id()] = e
		}
		newElems := map[string]element{}
		for _, e := range newF.elements {
			newElems[e.id()] = e
		}
		for _, e := range oldF.elements {
			if ne, ok := newElems[e.id()]; ok && slices.Equal(ne.value, e.value) {
				continue
			}
			if rs.release(k, e) {
				removed = append(removed, e)
			}
		}
		for _, e := range newF.elements {
			if oe, ok := oldElems[e.id()]; ok && slices.Equal(oe.value, e.value) && rs.holds(k, e) {
				continue
			}
			if rs.claim(k, e) {
				added = append(added, e)
			}
		}
		if changed[k] == nil {
			delete(rs.fragments, k)
		} else {
			rs.fragments[k] = changed[k]
		}
	}

	// A shared chain one Service let go of and another took up in the same
	// sync stays as it is.
	newShared = slices.DeleteFunc(newShared, func(c chain) bool { return slices.Contains(deadShared, c.name) })
	deadShared = slices.DeleteFunc(deadShared, func(name string) bool { return rs.chainRefs[name] > 0 })

	// New chains exist before any rule or element refers to them.
	for _, c := range newShared {
		tx.Add(&knftables.Chain{Name: c.name})
		addRules(tx, c)
	}
	for _, r := range rewrites {
		tx.Add(&knftables.Chain{Name: r.c.name})
	}
	for _, r := range rewrites {
		if r.exists {
			tx.Flush(&knftables.Chain{Name: r.c.name})
		}
		addRules(tx, r.c)
	}
	for _, e := range removed {
		tx.Delete(elementObject(e))
	}
	for _, e := range added {
		tx.Add(elementObject(e))
	}
	// A chain must be empty and unreferenced to be deleted: flush them all
	// first (dropping their jumps to each other), then delete them.
	deadChains = append(deadChains, deadShared...)
	for _, c := range deadChains {
		tx.Flush(&knftables.Chain{Name: c})
	}
	for _, c := range deadChains {
		tx.Delete(&knftables.Chain{Name: c})
	}
	for _, s := range deadSets {
		tx.Delete(&knftables.Set{Name: s})
	}
	for _, m := range deadMaps {
		tx.Delete(&knftables.Map{Name: m})
	}
}

// backendsElements writes all elements of a backends map as one "add
// element" command. The kernel finds a named set by walking the table's list
// of sets, once per command: with one command per element, 5,000 Services
// of 10 endpoints cost 50,000 walks of a 5,000-long list (seconds). knftables
// has one Element per command, so the others ride in the first one's value;
// the map is only ever flushed and rewritten whole, never edited by element.
func backendsElements(m backends) *knftables.Element {
	var value strings.Builder
	for i, e := range m.elements {
		if i > 0 {
			value.WriteString(" , " + strings.Join(e.key, " . ") + " : ")
		}
		value.WriteString(strings.Join(e.value, " . "))
	}
	return &knftables.Element{Map: m.name, Key: m.elements[0].key, Value: []string{value.String()}}
}

func equalElements(a, b []element) bool {
	return slices.EqualFunc(a, b, func(x, y element) bool {
		return slices.Equal(x.key, y.key) && slices.Equal(x.value, y.value)
	})
}

// backendsObject is a map from numgen index to endpoint address . port.
func backendsObject(m backends) *knftables.Map {
	return &knftables.Map{Name: m.name, TypeOf: "numgen random mod 1 : ip daddr . " + m.protocol + " dport"}
}

func addRules(tx *knftables.Transaction, c chain) {
	for _, r := range c.rules {
		tx.Add(&knftables.Rule{Chain: c.name, Rule: r})
	}
}

func affinityObject(a affinity) *knftables.Set {
	return &knftables.Set{
		Name:    a.name,
		Type:    "ipv4_addr",
		Flags:   []knftables.SetFlag{knftables.DynamicFlag, knftables.TimeoutFlag},
		Timeout: knftables.PtrTo(a.timeout),
	}
}

func elementObject(e element) *knftables.Element {
	el := &knftables.Element{Key: e.key, Value: e.value}
	if len(e.value) == 0 {
		el.Set = e.set
	} else {
		el.Map = e.set
	}
	return el
}

func sortedKeys[V any](m map[types.NamespacedName]V) []types.NamespacedName {
	keys := make([]types.NamespacedName, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].Namespace != keys[j].Namespace {
			return keys[i].Namespace < keys[j].Namespace
		}
		return keys[i].Name < keys[j].Name
	})
	return keys
}

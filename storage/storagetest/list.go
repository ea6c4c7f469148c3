package storagetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/tinykube/tinykube/storage"
)

// listAll follows continue tokens to the end and returns the keys and
// values seen, and the revision every page reported.
func listAll(t testing.TB, s storage.Interface, prefix string, opts storage.ListOptions) (map[string]string, []string, int64) {
	t.Helper()
	return listPages(t, s, prefix, opts, func() {})
}

// listPages is listAll calling betweenPages after every page but the last.
func listPages(t testing.TB, s storage.Interface, prefix string, opts storage.ListOptions, betweenPages func()) (map[string]string, []string, int64) {
	t.Helper()
	ctx := ctxFor(t)
	got := map[string]string{}
	var order []string
	var rev int64
	for page := 0; ; page++ {
		res, err := s.List(ctx, prefix, opts)
		if err != nil {
			t.Fatalf("list page %d: %v", page, err)
		}
		if page == 0 {
			rev = res.Revision
		} else if res.Revision != rev {
			t.Fatalf("page %d read at revision %d, first page at %d", page, res.Revision, rev)
		}
		if opts.Limit > 0 && int64(len(res.KVs)) > opts.Limit {
			t.Fatalf("page of %d keys, limit %d", len(res.KVs), opts.Limit)
		}
		for _, kv := range res.KVs {
			if _, dup := got[kv.Key]; dup {
				t.Fatalf("key %s listed twice", kv.Key)
			}
			got[kv.Key] = string(kv.Value)
			order = append(order, kv.Key)
		}
		if res.Continue == "" {
			if res.RemainingItemCount != 0 {
				t.Fatalf("last page reports %d remaining", res.RemainingItemCount)
			}
			return got, order, rev
		}
		opts.Continue = res.Continue
		betweenPages()
	}
}

func testListPaging(t *testing.T, s storage.Interface, _ Backend) {
	want := map[string]string{}
	for i := range 23 {
		k := fmt.Sprintf("/pods/ns/p%02d", i)
		mustCreate(t, s, k, fmt.Sprint(i))
		want[k] = fmt.Sprint(i)
	}
	mustCreate(t, s, "/pods/other", "not under /pods/ns/")
	mustCreate(t, s, "/pods/nt", "sorts right after the prefix")
	ctx := ctxFor(t)
	first, err := s.List(ctx, "/pods/ns/", storage.ListOptions{Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(first.KVs) != 5 || first.RemainingItemCount != 18 || first.Continue == "" {
		t.Fatalf("first page: %d keys, %d remaining, continue %q", len(first.KVs), first.RemainingItemCount, first.Continue)
	}
	for _, limit := range []int64{0, 1, 5, 22, 23, 24} {
		got, order, _ := listAll(t, s, "/pods/ns/", storage.ListOptions{Limit: limit})
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("limit %d: listed %v, want %v", limit, got, want)
		}
		for i := 1; i < len(order); i++ {
			if order[i-1] >= order[i] {
				t.Fatalf("limit %d: keys out of order: %s before %s", limit, order[i-1], order[i])
			}
		}
	}
	_, err = s.List(ctx, "/services/", storage.ListOptions{Continue: first.Continue})
	wantErr(t, "continue token of another prefix", err, storage.ErrInvalidContinue)
	_, err = s.List(ctx, "/pods/ns/", storage.ListOptions{Continue: "garbage!"})
	wantErr(t, "malformed continue token", err, storage.ErrInvalidContinue)
}

func testListAtRevision(t *testing.T, s storage.Interface, _ Backend) {
	ctx := ctxFor(t)
	a := mustCreate(t, s, "/x/a", "a1")
	mustCreate(t, s, "/x/b", "b1")
	snapshot := mustRevision(t, s)
	if _, err := s.Update(ctx, "/x/a", []byte("a2"), a.ModRevision); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(ctx, "/x/b", 0); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, "/x/c", "c1")
	old, _, rev := listAll(t, s, "/x/", storage.ListOptions{Revision: snapshot, Limit: 1})
	if rev != snapshot {
		t.Fatalf("list at %d read at %d", snapshot, rev)
	}
	if want := map[string]string{"/x/a": "a1", "/x/b": "b1"}; !reflect.DeepEqual(old, want) {
		t.Fatalf("list at %d: %v, want %v", snapshot, old, want)
	}
	now, _, _ := listAll(t, s, "/x/", storage.ListOptions{})
	if want := map[string]string{"/x/a": "a2", "/x/c": "c1"}; !reflect.DeepEqual(now, want) {
		t.Fatalf("latest list: %v, want %v", now, want)
	}
	_, err := s.List(ctx, "/x/", storage.ListOptions{Revision: mustRevision(t, s) + 1})
	wantErr(t, "list at a future revision", err, storage.ErrFutureRevision)
}

// testPaginationConsistency pages through a prefix while keys in it are
// created, updated and deleted between (and during) the pages; the pages
// together must be exactly the state at the first page's revision.
func testPaginationConsistency(t *testing.T, s storage.Interface, _ Backend) {
	ctx := ctxFor(t)
	const n = 300
	for i := range n {
		mustCreate(t, s, fmt.Sprintf("/c/k%03d", i), "v0")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	churn := func(i int) {
		k := fmt.Sprintf("/c/k%03d", rng.IntN(n+50))
		var err error
		switch i % 3 {
		case 0:
			_, err = s.Create(ctx, k, []byte(fmt.Sprint("c", i)))
		case 1:
			_, err = storage.GuaranteedUpdate(ctx, s, k, func(storage.KeyValue) ([]byte, error) { return []byte(fmt.Sprint("u", i)), nil })
		case 2:
			_, err = s.Delete(ctx, k, 0)
		}
		if err != nil && !errors.Is(err, storage.ErrAlreadyExists) && !errors.Is(err, storage.ErrNotFound) {
			t.Fatal(err)
		}
	}
	writes := 0
	paged, _, rev := listPages(t, s, "/c/", storage.ListOptions{Limit: 7}, func() {
		for range 5 {
			churn(writes)
			writes++
		}
	})
	whole, _, _ := listAll(t, s, "/c/", storage.ListOptions{Revision: rev})
	if !reflect.DeepEqual(paged, whole) {
		t.Fatalf("pages differ from the state at revision %d: %d keys paged, %d at that revision", rev, len(paged), len(whole))
	}
	latest, _, _ := listAll(t, s, "/c/", storage.ListOptions{})
	if reflect.DeepEqual(latest, whole) {
		t.Fatal("the writes between pages changed nothing; the test proved nothing")
	}
}

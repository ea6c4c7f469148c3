package storage

import (
	"context"
	"errors"
)

// UpdateFunc computes the new value of a key from its current state. It may
// be called several times, once per attempt. Returning an error aborts the
// update with that error.
type UpdateFunc func(current KeyValue) (newValue []byte, err error)

// GuaranteedUpdate reads key, applies fn and writes the result with
// compare-and-swap, retrying on ErrConflict until it succeeds, fn fails or
// ctx ends. It returns ErrNotFound when the key does not exist.
func GuaranteedUpdate(ctx context.Context, s Interface, key string, fn UpdateFunc) (KeyValue, error) {
	for {
		current, err := s.Get(ctx, key, 0)
		if err != nil {
			return KeyValue{}, err
		}
		value, err := fn(current)
		if err != nil {
			return KeyValue{}, err
		}
		updated, err := s.Update(ctx, key, value, current.ModRevision)
		if errors.Is(err, ErrConflict) {
			if ctx.Err() != nil {
				return KeyValue{}, ctx.Err()
			}
			continue
		}
		return updated, err
	}
}

// Package devcall runs requests to TEE guest devices (ioctls, configfs-tsm
// reads, Gramine's pseudo-files) so that a caller can give up when its
// context ends. A request can block in the kernel for tens of seconds,
// for example while the host's quoting service generates a TDX quote,
// and none of these interfaces takes a deadline.
package devcall

import (
	"context"
	"fmt"
	"sync"
)

// Serial admits one device request at a time. The zero value is ready to
// use, and a Serial must not be copied after first use.
type Serial struct {
	once sync.Once
	slot chan struct{}
}

func (s *Serial) acquire(ctx context.Context) error {
	s.once.Do(func() { s.slot = make(chan struct{}, 1) })
	select {
	case s.slot <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Serial) release() { <-s.slot }

// Do waits until no other request of s runs, then runs request in a new
// goroutine and returns its result. When ctx ends first, Do returns at
// once an error that starts with name and wraps the context's error. An
// abandoned request keeps s until it returns, and its result is
// discarded.
func Do[T any](ctx context.Context, s *Serial, name string, request func() (T, error)) (T, error) {
	var zero T
	// select picks at random among ready cases, so a context that has
	// already ended is checked first.
	if err := ctx.Err(); err != nil {
		return zero, fmt.Errorf("%s: device request not started: %w", name, err)
	}
	if err := s.acquire(ctx); err != nil {
		return zero, fmt.Errorf("%s: gave up waiting for an earlier device request: %w", name, err)
	}
	type result struct {
		value T
		err   error
	}
	done := make(chan result, 1)
	go func() {
		defer s.release()
		value, err := request()
		done <- result{value, err}
	}()
	select {
	case r := <-done:
		return r.value, r.err
	case <-ctx.Done():
		return zero, fmt.Errorf("%s: gave up waiting for the device: %w", name, ctx.Err())
	}
}

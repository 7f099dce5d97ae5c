package attest

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
)

var (
	registryMu sync.RWMutex
	registry   = map[string]Verifier{}
)

// Register makes a verifier available to Detect and Lookup. TEE packages
// call it from init. Registering a second verifier under the same name
// panics, because that is a programming error caught at start-up.
func Register(v Verifier) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[v.Name()]; dup {
		panic("attest: verifier registered twice: " + v.Name())
	}
	registry[v.Name()] = v
}

// Lookup returns the verifier registered under name.
func Lookup(name string) (Verifier, bool) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	v, ok := registry[name]
	return v, ok
}

// Verifiers returns every registered verifier, sorted by name.
func Verifiers() []Verifier {
	registryMu.RLock()
	defer registryMu.RUnlock()
	out := make([]Verifier, 0, len(registry))
	for _, v := range registry {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out
}

// Detect returns the verifier for data. Exactly one registered verifier
// must recognize it; none or several is an ErrUnsupported error that lists
// the candidates.
func Detect(data []byte) (Verifier, error) {
	var found []Verifier
	for _, v := range Verifiers() {
		if detectGuarded(v, data) {
			found = append(found, v)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		var names []string
		for _, v := range Verifiers() {
			names = append(names, v.Name())
		}
		return nil, Errorf(ErrUnsupported, "evidence", "format not recognized (%d bytes)", len(data)).
			WithFix(fmt.Sprintf("pass evidence of a supported format (%s), or name it with --format", strings.Join(names, ", ")))
	default:
		var names []string
		for _, v := range found {
			names = append(names, v.Name())
		}
		return nil, Errorf(ErrUnsupported, "evidence", "format is ambiguous: it looks like %s", strings.Join(names, " and ")).
			WithFix("name the format with --format")
	}
}

// Verify detects the format of ev (unless ev.Format names one) and verifies
// it.
func Verify(ctx context.Context, ev Evidence, opts Options) (*Claims, error) {
	var v Verifier
	if ev.Format != "" {
		var ok bool
		if v, ok = Lookup(ev.Format); !ok {
			return nil, Errorf(ErrUnsupported, "format", "no verifier for format %q", ev.Format).
				WithFix("run `cloister verify --help` for the list of formats")
		}
	} else {
		var err error
		if v, err = Detect(ev.Data); err != nil {
			return nil, err
		}
		ev.Format = v.Name()
	}
	return verifyGuarded(ctx, v, ev, opts)
}

// verifyGuarded calls v.Verify and turns a panic into a rejection. Verifiers
// must not panic on any input; this guard keeps a bug in one from taking
// down a service or, worse, from being mistaken for anything but a
// rejection.
func verifyGuarded(ctx context.Context, v Verifier, ev Evidence, opts Options) (claims *Claims, err error) {
	defer func() {
		if r := recover(); r != nil {
			claims = nil
			err = &Error{Kind: ErrMalformed, Field: "evidence",
				Reason: fmt.Sprintf("the %s verifier failed on this input (%v)", v.Name(), r),
				Fix:    "report this as a bug in Cloister with the evidence file attached; the evidence is rejected"}
		}
	}()
	return v.Verify(ctx, ev, opts)
}

// detectGuarded calls v.Detect and reads a panic as "not this format".
func detectGuarded(v Verifier, data []byte) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return v.Detect(data)
}

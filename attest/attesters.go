package attest

import (
	"errors"
	"sort"
	"sync"
)

// ErrNoDevice reports that this machine lacks the device or interface a
// hardware attester needs (no /dev/sev-guest, no configfs-tsm provider, no
// /dev/nsm). It is the normal answer on a machine without that TEE.
var ErrNoDevice = errors.New("TEE device not present")

// AttesterFactory opens the hardware attester of one TEE on this machine.
// It returns an error wrapping ErrNoDevice when the hardware is absent.
type AttesterFactory func() (Attester, error)

var (
	attestersMu sync.RWMutex
	attesters   = map[string]AttesterFactory{}
)

// RegisterAttester makes a hardware attester available to OpenAttesters.
// TEE packages call it from init.
func RegisterAttester(name string, f AttesterFactory) {
	attestersMu.Lock()
	defer attestersMu.Unlock()
	if _, dup := attesters[name]; dup {
		panic("attest: attester registered twice: " + name)
	}
	attesters[name] = f
}

// OpenAttesters tries every registered hardware attester and returns those
// whose hardware is present, sorted by name, together with the errors of
// the others that failed for a reason other than ErrNoDevice.
func OpenAttesters() ([]Attester, []error) {
	attestersMu.RLock()
	names := make([]string, 0, len(attesters))
	for n := range attesters {
		names = append(names, n)
	}
	attestersMu.RUnlock()
	sort.Strings(names)

	var found []Attester
	var errs []error
	for _, n := range names {
		attestersMu.RLock()
		f := attesters[n]
		attestersMu.RUnlock()
		a, err := f()
		switch {
		case err == nil:
			found = append(found, a)
		case !errors.Is(err, ErrNoDevice):
			errs = append(errs, err)
		}
	}
	return found, errs
}

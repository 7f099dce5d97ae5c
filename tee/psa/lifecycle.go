package psa

import "fmt"

// Lifecycle is the PSA security lifecycle claim: a major state in the high
// byte and an IMPLEMENTATION DEFINED minor state in the low byte.
type Lifecycle uint16

// The major lifecycle states of RFC 9783, section 4.3.1.
const (
	LifecycleUnknown                Lifecycle = 0x0000
	LifecycleAssemblyAndTest        Lifecycle = 0x1000
	LifecyclePSARoTProvisioning     Lifecycle = 0x2000
	LifecycleSecured                Lifecycle = 0x3000
	LifecycleNonPSARoTDebug         Lifecycle = 0x4000
	LifecycleRecoverablePSARoTDebug Lifecycle = 0x5000
	LifecycleDecommissioned         Lifecycle = 0x6000
	lifecycleMajorMask              Lifecycle = 0xff00
	lifecycleMaxValue                         = 0x60ff
)

// ParseLifecycle checks that v is one of the defined major states.
func ParseLifecycle(v int64) (Lifecycle, error) {
	if v < 0 || v > lifecycleMaxValue || v&0x0f00 != 0 {
		return 0, fmt.Errorf("security lifecycle %#04x is not a defined state (0x0000-0x00ff, 0x1000-0x10ff, ..., 0x6000-0x60ff)", v)
	}
	return Lifecycle(v), nil
}

// Major returns the major state.
func (l Lifecycle) Major() Lifecycle { return l & lifecycleMajorMask }

// Debug reports whether the state lets a debugger reach the device: the
// non-PSA-RoT debug and the recoverable PSA-RoT debug states.
func (l Lifecycle) Debug() bool {
	m := l.Major()
	return m == LifecycleNonPSARoTDebug || m == LifecycleRecoverablePSARoTDebug
}

// String returns the state's name from RFC 9783 with its value.
func (l Lifecycle) String() string {
	names := map[Lifecycle]string{
		LifecycleUnknown:                "unknown",
		LifecycleAssemblyAndTest:        "assembly-and-test",
		LifecyclePSARoTProvisioning:     "psa-rot-provisioning",
		LifecycleSecured:                "secured",
		LifecycleNonPSARoTDebug:         "non-psa-rot-debug",
		LifecycleRecoverablePSARoTDebug: "recoverable-psa-rot-debug",
		LifecycleDecommissioned:         "decommissioned",
	}
	return fmt.Sprintf("%s (%#04x)", names[l.Major()], uint16(l))
}

package ratls

import (
	"errors"
	"net"
)

// IsRemoteAlert reports whether err is the TLS alert alert, such as
// "bad certificate", that the peer sent. crypto/tls reports a received
// alert as a *net.OpError "remote error" around an unexported type, so
// only the alert's text identifies it.
func IsRemoteAlert(err error, alert string) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error" && op.Err != nil && op.Err.Error() == "tls: "+alert
}

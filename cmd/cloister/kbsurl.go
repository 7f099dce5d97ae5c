package main

import (
	"net"
	"net/url"
)

// checkKBSURL rejects a key broker URL where the network could respond in
// the broker's place: plain http:// to a host that is not a loopback IP
// address, unless allowHTTP. The KBS protocol encrypts each secret to the
// TEE key that the guest sends. Over plain HTTP, anyone on the path can
// encrypt a value of its choice to that key, and the guest takes it as the
// secret. A name such as localhost does not count as loopback, because
// it resolves through files and DNS that the host machine may control.
func checkKBSURL(raw string, allowHTTP bool) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageError("invalid --kbs %q: use https://host:port, or http://127.0.0.1:port for a key broker on this machine", raw)
	}
	if u.Scheme == "https" || allowHTTP {
		return nil
	}
	if ip := net.ParseIP(u.Hostname()); ip != nil && ip.IsLoopback() {
		return nil
	}
	return usageError("--kbs %s uses plain HTTP to a host that is not a loopback IP address (names such as localhost count as other hosts, because they resolve through files and DNS), "+
		"so the network can impersonate the key broker and supply secrets of its choice; "+
		"use https:// (with --kbs-ca for a private CA), http://127.0.0.1:PORT for a key broker on this machine, or pass --kbs-allow-http to accept that risk", raw)
}

// kbsAllowHTTPHelp is the help text of --kbs-allow-http.
const kbsAllowHTTPHelp = "accept a plain http:// --kbs on another host, although the network can then impersonate the key broker"

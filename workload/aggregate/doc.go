// Package aggregate is a secure aggregation workload for federated
// learning: parties submit model updates (float64 vectors of a fixed
// dimension) for a numbered round over RA-TLS, and the workload releases
// only the mean of a round once at least Manifest.MinClients distinct
// parties contributed to it.
//
// The guarantees rest on the TEE and on what a party checks before it
// sends an update:
//
//   - The manifest (dimension, MinClients, clipping norm, parties) is bound
//     to the TEE through HOST_DATA, which workload.OpenTEE checks at start.
//     A party that verifies the measurement and the manifest digest with
//     workload.NewClient therefore learns the threshold and the party list
//     that the workload enforces.
//   - An update is clipped to the L2 norm ClipNorm (when set), added to the
//     round's running sum and then overwritten with zeros. The workload
//     never stores an update by itself, and no endpoint returns one. An
//     update with a NaN or infinite element, or whose sum of squares
//     overflows float64, is rejected rather than clipped.
//   - A party is identified by its TLS client key, which the manifest
//     lists. Each party contributes at most once per round.
//   - Closing a round with fewer than MinClients contributions is rejected
//     and releases nothing. A closed round computes the mean, zeroes the
//     sum, and opens the next round.
//
// A threshold of k does not hide an update from k-1 colluding parties,
// which can subtract their own updates from k times the mean. The party
// list keeps one client with many keys from filling the threshold alone.
// Noise for differential privacy is not added.
package aggregate

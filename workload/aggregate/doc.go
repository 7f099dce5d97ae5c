// Package aggregate is a secure aggregation workload for federated
// learning: parties submit model updates (float64 vectors of a fixed
// dimension) for a numbered round over RA-TLS, and the workload releases
// only the mean of a round once at least MinClients distinct parties
// contributed to it.
//
// The guarantees rest on the TEE and on what a party checks before it
// sends an update:
//
//   - The configuration (dimension, MinClients, clipping norm, accepted
//     parties) is hashed into a digest that the workload requires to equal
//     its SEV-SNP HOST_DATA at start-up, so a party that checks HOST_DATA
//     (appraise.Options.HostData) and the launch measurement knows which
//     threshold and which party list are enforced.
//   - An update is clipped to the L2 norm ClipNorm (when set), added to the
//     round's running sum and then overwritten with zeros. The workload
//     never stores an update by itself, and no endpoint returns one.
//   - A party is the SHA-256 of its TLS client certificate's
//     SubjectPublicKeyInfo. Each party contributes at most once per round.
//   - Closing a round with fewer than MinClients contributions is rejected
//     and releases nothing. A closed round computes the mean, zeroes the
//     sum, and opens the next round.
//
// A threshold of k does not hide an update from k-1 colluding parties,
// which can subtract their own updates from k times the mean; Parties
// restricts who may contribute, so that one client with many keys cannot
// fill the threshold alone. Noise for differential privacy is not added.
package aggregate

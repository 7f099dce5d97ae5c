// Package cleanroom is a data clean room: parties who cannot share their
// tables with each other upload them to a workload in a TEE, which runs one
// SQL query that they all agreed to and returns only its result.
//
// The agreement is a Manifest (JSON). It fixes the parties and the SHA-256
// of each party's public key, each party's table with its columns, the
// query, and the recipients of the result. It also sets a minimum group
// size: result rows whose group-size column is below it are suppressed.
// The workload applies the minimum to whatever number the query puts in
// that column, so it gives k-anonymity only when the query counts the
// individuals of each released group there. The manifest's digest is
// bound into the TEE's evidence (see package workload), so a party that
// verifies the workload also verifies the agreement, and a workload
// started with any other manifest is rejected before data leaves the
// party.
//
// The workload (Room) holds the tables in an in-memory SQLite database
// (modernc.org/sqlite, a pure-Go SQLite, so that the TEE image needs no C
// library). It accepts each table once, from its party only; it runs the
// query once, when the last table arrives, with PRAGMA query_only set; it
// returns the result only to the recipients; and then it erases the
// inputs: it drops the tables with PRAGMA secure_delete set, which zeroes
// their pages, closes the database, and zeroes the upload buffers.
//
// What the clean room does not hide: the result itself, by design, and
// whatever the agreed query reveals. The threshold suppresses small
// groups of one result, but differencing attacks over several agreements
// are outside its scope, and the parties review the query before they
// sign off the manifest.
package cleanroom

// Package modelserve is a protected model serving workload: the model's
// weights are stored encrypted at rest (AES-256-GCM), the key broker
// releases their key only to the attested workload, and the workload
// decrypts them in memory and serves predictions over RA-TLS.
//
// The model format is a small multilayer perceptron in JSON that this
// package evaluates itself (see Model), because the point is the key
// flow, not the inference engine. Logistic regression is the one-layer
// case.
//
// The manifest names the model by the SHA-256 of its plaintext JSON and
// the key broker resource of its key. It is bound to the TEE through
// HOST_DATA, so a party that checks the manifest digest learns which model
// serves its predictions. The workload refuses to serve a decrypted model
// with another digest. The key broker's resource policy (see
// custody.ReleasePolicy) ties the key to the workload's launch
// measurement and manifest digest.
package modelserve

// Package identity owns the credential primitives of supportgate: argon2id
// password hashes, TOTP second factors, opaque bearer tokens, the login
// lockout policy and the role names. It stores nothing, serves nothing and
// never logs; secrets appear in no error message.
//
// Every function that needs randomness takes an io.Reader (crypto/rand.Reader
// in production) and every function that depends on the clock takes the time,
// so callers and tests control both.
package identity

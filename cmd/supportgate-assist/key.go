package main

import "encoding/base64"

// fmtKey renders a WireGuard key as wg(8) prints it.
func fmtKey(k [32]byte) string { return base64.StdEncoding.EncodeToString(k[:]) }

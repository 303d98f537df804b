package recorder_test

import (
	"io"
	"strconv"
)

var errEOF = io.EOF

func strconvItoa(n int) string { return strconv.Itoa(n) }

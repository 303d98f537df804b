package review

import "errors"

func verifyAuditSlice(b []byte, session string) (int, error) { return 0, errors.New("todo") }

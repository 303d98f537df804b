package audit

// Exported for the tests in package audit_test.
var (
	LooksSecret     = looksSecret
	LooksSecretText = looksSecretText
)

package recorder

// For the external tests' benchmarks.
var (
	TerminalText    = terminalText
	WriterBenchText = writerBenchText
)

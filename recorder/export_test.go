package recorder

// For the external tests and benchmarks.
var (
	TerminalText    = terminalText
	WriterBenchText = writerBenchText
	H264KeySize     = h264KeySize
)

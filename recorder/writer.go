package recorder

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"filippo.io/age"
	"golang.org/x/crypto/chacha20poly1305"
)

// Errors returned by Writer methods.
var (
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("recorder: writer closed")
	// ErrSizeCap is returned for records dropped because the recording
	// reached WriterConfig.MaxBytes; a "recording.size_cap" event marks the
	// point in the recording.
	ErrSizeCap = errors.New("recorder: recording size cap reached")
	// ErrTooManyChannels is returned for terminal records of a channel
	// when MaxOpenChannels others are open (see EndChannel). The records
	// are not written; the recording itself carries on.
	ErrTooManyChannels = errors.New("recorder: too many open terminal channels")
	// ErrNoChannel is returned by Screen for a channel that has no
	// terminal state: it had no terminal record yet, or EndChannel ended it.
	ErrNoChannel = errors.New("recorder: no such open terminal channel")
)

// MaxOpenChannels caps the terminal channels a Writer keeps state for at
// once (a screen model for keyframes and held-back redaction, up to a few
// hundred KiB each); EndChannel releases one.
const MaxOpenChannels = 64

// Defaults for WriterConfig.
const (
	DefaultMaxBytes           = 4 << 30
	DefaultCheckpointInterval = 5 * time.Second
	MaxCheckpointInterval     = 10 * time.Second
	DefaultFlushInterval      = time.Second
)

// WriterConfig configures a Writer. RecordingID, SessionID, Recipients and
// Signer are required.
type WriterConfig struct {
	RecordingID string // [A-Za-z0-9._:-]{1,128}
	SessionID   string // [A-Za-z0-9._:-]{1,128}
	// Start is the recording's time origin; zero means Now().
	Start time.Time
	// Recipients receive the age-wrapped data key (compliance keys).
	Recipients []age.Recipient
	// Signer signs the header, checkpoints and the end record.
	Signer ed25519.PrivateKey
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Rand is the source of the data key; nil means crypto/rand.
	Rand io.Reader
	// Redact configures redaction of output, input and chat.
	Redact RedactConfig
	// RecordInput records terminal input; off by default.
	RecordInput bool
	// MaxBytes caps the file size; 0 means DefaultMaxBytes, < 0 no cap.
	MaxBytes int64
	// CheckpointInterval is how often signed checkpoints and keyframes are
	// written while records arrive; 0 means 5 s, capped at 10 s.
	CheckpointInterval time.Duration
	// FlushInterval is how often buffered records are written to the file;
	// 0 means 1 s.
	FlushInterval time.Duration
	// Logger receives warnings (size cap, write errors); nil discards.
	Logger *slog.Logger
	// OnFailure, if set, is called once, on a goroutine of its own, when
	// the Writer first refuses a record: MaxBytes reached (ErrSizeCap) or
	// the file failing. What the session does after that is not recorded,
	// so the owner should stop it: the gateway ends the session.
	OnFailure func(error)
}

func (c *WriterConfig) check() error {
	switch {
	case !validID(c.RecordingID):
		return errors.New("recorder: RecordingID is required ([A-Za-z0-9._:-], at most 128)")
	case !validID(c.SessionID):
		return errors.New("recorder: SessionID is required ([A-Za-z0-9._:-], at most 128)")
	case len(c.Recipients) == 0:
		return errors.New("recorder: Recipients are required")
	case len(c.Signer) != ed25519.PrivateKeySize:
		return errors.New("recorder: Signer is required")
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	if c.Start.IsZero() {
		c.Start = c.Now()
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.CheckpointInterval <= 0 {
		c.CheckpointInterval = DefaultCheckpointInterval
	}
	c.CheckpointInterval = min(c.CheckpointInterval, MaxCheckpointInterval)
	if c.FlushInterval <= 0 {
		c.FlushInterval = DefaultFlushInterval
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Writer streams one recording. Its methods are safe for concurrent use by
// the channels of one session. The calling goroutine redacts records and
// puts them, in plaintext, into a batch buffer; full batches, and the
// current one at least every FlushInterval, are handed to a sink whose
// goroutines seal them in place, chain and sign them, and write them, so
// that redaction, sealing, hashing and writing overlap on a machine's
// cores. A sync of the file starts at each checkpoint, beside the writing,
// and Close returns once everything is synced. Create writes with direct
// I/O where it can (see directFile).
//
// Terminal records name their channel (OutputOn and so on; Output and the
// other channel-less calls are channel 0). Each open channel has its own
// screen model for keyframes and its own redaction state, so that the
// output of two terminals at once is neither mixed on one screen nor
// redacted as one stream.
//
// Memory is bounded: besides the redaction and keyframe state of each
// open channel (a few hundred KiB; at most MaxOpenChannels are open at
// once) and, for a file from Create, a staging buffer of at most
// 1 MiB, at most 2*batchQueue+writeQueue+4 = 16 batch buffers of 256 KiB
// exist (as many as the disk is behind), each larger only to hold a single
// media sample (at most 8 MiB).
type Writer struct {
	cfg    WriterConfig
	closer io.Closer // the file, when the Writer opened it

	mu          sync.Mutex // guards the fields below
	closed      bool
	seq         uint64
	lastT       time.Duration
	chans       map[int]*chanState // open terminal channels
	ended       int                // redactions in channels ended by EndChannel
	textRedacts int                // in chat and RedactText
	redactBuf   []byte             // redacted terminal bytes
	chanHead    []byte             // a terminal record's head: channel number, size
	size        int64              // bytes enqueued so far
	capped      bool
	dropped     int64
	sinceCP     int // records since the last checkpoint
	lastCP      time.Time
	keyframes   int
	cur         *batch // being filled

	sink     *sink
	stop     chan struct{}
	wg       sync.WaitGroup
	closeErr error
	once     sync.Once
	failOnce sync.Once // OnFailure's
}

// Create creates the file at path (it must not exist) with mode 0600 and
// starts a Writer on it; Close closes the file.
func Create(path string, cfg WriterConfig) (*Writer, error) {
	f, err := createFile(path)
	if err != nil {
		return nil, fmt.Errorf("recorder: %w", err)
	}
	w, err := NewWriter(f, cfg)
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	w.closer = f
	return w, nil
}

// NewWriter writes the header to dst and returns a Writer for the records.
// If dst has a Sync() error method (like *os.File) it is called at each
// checkpoint and on Close.
func NewWriter(dst io.Writer, cfg WriterConfig) (*Writer, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	key := make([]byte, dataKeySize)
	if _, err := io.ReadFull(cfg.Rand, key); err != nil {
		return nil, fmt.Errorf("recorder: data key: %w", err)
	}
	aead, err := chacha20poly1305.New(key)
	if err != nil {
		return nil, fmt.Errorf("recorder: %w", err)
	}
	wrapped, err := wrapKey(key, cfg.Recipients)
	clear(key)
	if err != nil {
		return nil, fmt.Errorf("recorder: wrapping data key: %w", err)
	}
	hdr := marshalHeader(Header{
		Version:     writeVersion,
		RecordingID: cfg.RecordingID,
		SessionID:   cfg.SessionID,
		Start:       cfg.Start,
		Signer:      cfg.Signer.Public().(ed25519.PublicKey),
		WrappedKey:  wrapped,
	}, cfg.Signer)
	if _, err := dst.Write(hdr); err != nil {
		return nil, fmt.Errorf("recorder: writing header: %w", err)
	}
	h0 := headerChain(writeVersion, hdr)
	w := &Writer{
		cfg:    cfg,
		chans:  map[int]*chanState{},
		size:   int64(len(hdr)),
		lastCP: cfg.Now(),
		stop:   make(chan struct{}),
	}
	z := &sealer{aead: aead}
	copy(z.prevTag[:], h0[:tagLen])
	w.sink = newSink(dst, z, cfg.Signer, cfg.RecordingID, h0, int64(len(hdr)), cfg.Logger)
	w.sink.onFail = w.failed
	w.cur = w.sink.newBatch()
	w.wg.Add(5)
	go func() { defer w.wg.Done(); w.sink.seal() }()
	go func() { defer w.wg.Done(); w.sink.run() }()
	go func() { defer w.wg.Done(); w.sink.write() }()
	go func() { defer w.wg.Done(); w.sink.syncLoop() }()
	go func() { defer w.wg.Done(); w.flusher() }()
	if cfg.Redact.Disabled {
		// A reviewer must be able to tell that card numbers were not masked.
		if err := w.Event("redaction.disabled", nil); err != nil {
			w.Close()
			return nil, err
		}
	}
	return w, nil
}

// flusher checkpoints an idle recording and writes buffered records to the
// file every FlushInterval, until Close.
func (w *Writer) flusher() {
	t := time.NewTicker(w.cfg.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			w.mu.Lock()
			if !w.closed {
				w.maybeCheckpointLocked()
				if len(w.cur.buf) > 0 {
					w.submitLocked()
				}
			}
			w.mu.Unlock()
		}
	}
}

// Flush writes everything recorded so far to the file and returns once it
// is there (not necessarily synced).
func (w *Writer) Flush() error {
	done := make(chan error, 1)
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return ErrClosed
	}
	w.cur.done = done
	w.submitLocked()
	w.mu.Unlock()
	return <-done
}

// chanState is what a Writer keeps for one open terminal channel: its
// screen for keyframes and what redaction holds back in each direction.
type chanState struct {
	term    termState
	out, in *streamRedactor // nil when redaction is disabled
}

// Output records terminal output of channel 0 (redacted first).
func (w *Writer) Output(p []byte) error { return w.OutputOn(0, p) }

// OutputOn records terminal output of channel ch (redacted first). Each
// channel is a terminal of its own: its own screen for keyframes, its own
// redaction state, so that two shells at once are recorded apart.
func (w *Writer) OutputOn(ch int, p []byte) error {
	return w.terminal(ch, TypeOutput, p)
}

// Input records terminal input of channel 0 when RecordInput is set;
// otherwise it does nothing.
func (w *Writer) Input(p []byte) error { return w.InputOn(0, p) }

// InputOn records terminal input of channel ch when RecordInput is set;
// otherwise it does nothing.
func (w *Writer) InputOn(ch int, p []byte) error {
	if !w.cfg.RecordInput {
		return nil
	}
	return w.terminal(ch, TypeInput, p)
}

// Stdin records what is sent to a shell or command that has no terminal
// (a script piped to sh, a file an upload streams) as input records,
// redacted like input, whatever RecordInput says. Input is off by default
// because on a terminal it holds what the terminal does not echo, such as
// a password typed at a prompt; without a terminal nothing is echoed, and
// what was sent is the only trace of what ran. Stdin is channel 0's.
func (w *Writer) Stdin(p []byte) error { return w.StdinOn(0, p) }

// StdinOn records what is sent to channel ch's shell or command without a
// terminal, as Stdin does for channel 0.
func (w *Writer) StdinOn(ch int, p []byte) error {
	return w.terminal(ch, TypeInput, p)
}

func (w *Writer) terminal(ch int, typ Type, p []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usableLocked(); err != nil {
		return err
	}
	cs, err := w.chanLocked(ch)
	if err != nil {
		return err
	}
	red := cs.out
	if typ == TypeInput {
		red = cs.in
	}
	if red == nil { // redaction disabled
		err = w.terminalLocked(ch, cs, typ, p)
	} else {
		w.redactBuf = red.process(w.redactBuf[:0], p)
		err = w.terminalLocked(ch, cs, typ, w.redactBuf)
	}
	w.maybeCheckpointLocked()
	return err
}

// chanLocked returns the state of terminal channel ch, opening it on
// first use.
func (w *Writer) chanLocked(ch int) (*chanState, error) {
	if cs := w.chans[ch]; cs != nil {
		return cs, nil
	}
	if ch < 0 || ch > MaxChannel {
		return nil, fmt.Errorf("recorder: bad channel number %d", ch)
	}
	if len(w.chans) >= MaxOpenChannels {
		return nil, ErrTooManyChannels
	}
	cs := &chanState{out: newStreamRedactor(w.cfg.Redact), in: newStreamRedactor(w.cfg.Redact)}
	w.chans[ch] = cs
	return cs, nil
}

// headLocked returns the head of a terminal record of channel ch: the
// channel number, then the size when cols > 0. It is valid until the
// next call.
func (w *Writer) headLocked(ch, cols, rows int) []byte {
	w.chanHead = binary.AppendUvarint(w.chanHead[:0], uint64(ch))
	if cols > 0 {
		w.chanHead = appendSize(w.chanHead, cols, rows)
	}
	return w.chanHead
}

// terminalLocked records p as terminal records of channel ch, of at most
// maxChunk bytes each.
func (w *Writer) terminalLocked(ch int, cs *chanState, typ Type, p []byte) error {
	for len(p) > 0 {
		n := min(len(p), maxChunk)
		if err := w.appendLocked(typ, w.headLocked(ch, 0, 0), p[:n], false); err != nil {
			return err
		}
		if typ == TypeOutput {
			cs.term.write(p[:n])
		}
		p = p[n:]
	}
	return nil
}

// TermScreen is a terminal channel's current screen, as Screen returns it.
type TermScreen struct {
	Cols, Rows int
	// Redraw brings a terminal of Cols x Rows, in whatever state earlier
	// output left it, to the screen: content, attributes, cursor and the
	// alternate screen (see vt.Screen.Redraw). It is bounded by the size.
	Redraw []byte
	// Held is what redaction still holds back of the channel's last
	// output (a partial line, a candidate card number), redacted as it
	// would be recorded were the channel to end now: the screen does not
	// show it yet, and a live view that plays Redraw, then Held, then the
	// channel's output after the screen, loses none of it. It is at most
	// a few KiB.
	Held []byte
}

// Screen returns channel ch's current screen, as the recording has it:
// the output recorded so far, redacted, less what redaction still holds
// back of the channel's last output, which comes apart as TermScreen.Held.
// status, if not empty, is drawn over the top line (see
// vt.Screen.Redraw). The Writer's lock is held while the screen is
// rendered, so output recorded at the same time is either all in the
// screen or all after it. It returns ErrNoChannel for a
// channel without terminal state and ErrClosed after Close.
func (w *Writer) Screen(ch int, status string) (TermScreen, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return TermScreen{}, ErrClosed
	}
	cs := w.chans[ch]
	if cs == nil {
		return TermScreen{}, ErrNoChannel
	}
	cs.term.catchUp()
	cols, rows := cs.term.screen.Size()
	var held []byte
	if cs.out != nil {
		held = cs.out.held(nil)
	}
	return TermScreen{Cols: cols, Rows: rows, Redraw: cs.term.screen.Redraw(status), Held: held}, nil
}

// Resize records the terminal size of channel 0.
func (w *Writer) Resize(cols, rows int) error { return w.ResizeOn(0, cols, rows) }

// ResizeOn records the terminal size of channel ch.
func (w *Writer) ResizeOn(ch, cols, rows int) error {
	if cols <= 0 || rows <= 0 || cols > 0xffff || rows > 0xffff {
		return fmt.Errorf("recorder: bad terminal size %dx%d", cols, rows)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usableLocked(); err != nil {
		return err
	}
	cs, err := w.chanLocked(ch)
	if err != nil {
		return err
	}
	if err := w.appendLocked(TypeResize, w.headLocked(ch, cols, rows), nil, false); err != nil {
		return err
	}
	cs.term.resize(cols, rows)
	w.maybeCheckpointLocked()
	return nil
}

// EndChannel records what redaction still holds back of channel ch and
// releases the channel's state; the owner calls it when the channel
// closes. A later record of ch opens it again, on a blank screen model.
func (w *Writer) EndChannel(ch int) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usableLocked(); err != nil {
		return err
	}
	cs := w.chans[ch]
	if cs == nil {
		return nil
	}
	err := w.flushChanLocked(ch, cs)
	if cs.term.dirty {
		// The last screen, so that a seek after the channel ended shows
		// it without playing its output since the last keyframe.
		w.keyframeLocked(ch, cs)
	}
	w.ended += cs.out.count() + cs.in.count()
	delete(w.chans, ch)
	w.maybeCheckpointLocked()
	return err
}

// flushChanLocked records what redaction holds back of channel ch.
func (w *Writer) flushChanLocked(ch int, cs *chanState) error {
	var err error
	if cs.out != nil {
		w.redactBuf = cs.out.flush(w.redactBuf[:0])
		err = w.terminalLocked(ch, cs, TypeOutput, w.redactBuf)
	}
	if cs.in != nil { // input, or Stdin's, held back
		w.redactBuf = cs.in.flush(w.redactBuf[:0])
		if ierr := w.terminalLocked(ch, cs, TypeInput, w.redactBuf); err == nil {
			err = ierr
		}
	}
	return err
}

// Chat records a chat message (redacted first).
func (w *Writer) Chat(from, text string) error {
	text, n := redactText(w.cfg.Redact, text)
	body, err := json.Marshal(chatBody{From: from, Text: text})
	if err != nil {
		return fmt.Errorf("recorder: chat: %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usableLocked(); err != nil {
		return err
	}
	w.textRedacts += n
	err = w.appendLocked(TypeChat, body, nil, false)
	w.maybeCheckpointLocked()
	return err
}

// Event records a session event such as "consent.approved",
// "scope.changed", "participant.joined" or "session.expired".
func (w *Writer) Event(kind string, detail map[string]string) error {
	body, err := json.Marshal(eventBody{Kind: kind, Detail: detail})
	if err != nil {
		return fmt.Errorf("recorder: event: %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usableLocked(); err != nil {
		return err
	}
	err = w.appendLocked(TypeEvent, body, nil, false)
	w.maybeCheckpointLocked()
	return err
}

// Media records one encoded media sample (codec "vp8" or "h264") with its
// presentation timestamp.
func (w *Writer) Media(codec string, ts time.Duration, frame []byte, keyframe bool) error {
	if len(codec) == 0 || len(codec) > 32 {
		return errors.New("recorder: media: bad codec name")
	}
	if len(frame) > MaxMediaFrame {
		return fmt.Errorf("recorder: media: frame of %d bytes exceeds %d", len(frame), MaxMediaFrame)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usableLocked(); err != nil {
		return err
	}
	head := appendMedia(make([]byte, 0, len(codec)+10), codec, ts, nil, keyframe)
	err := w.appendLocked(TypeMedia, head, frame, false)
	w.maybeCheckpointLocked()
	return err
}

// Forward records forwarded-connection metadata.
func (w *Writer) Forward(meta ForwardMeta) error {
	body, err := json.Marshal(meta)
	if err != nil {
		return fmt.Errorf("recorder: forward: %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usableLocked(); err != nil {
		return err
	}
	err = w.appendLocked(TypeForward, body, nil, false)
	w.maybeCheckpointLocked()
	return err
}

// RedactText returns text with this recording's redactions applied (card
// numbers and the configured patterns), as chat is recorded, and counts
// them with the recording's. It is for text that leaves with the
// recording's session but not through it, such as a command line the
// audit log keeps in the clear.
func (w *Writer) RedactText(text string) string {
	text, n := redactText(w.cfg.Redact, text)
	if n > 0 {
		w.mu.Lock()
		w.textRedacts += n
		w.mu.Unlock()
	}
	return text
}

// Redactions returns how many redactions were made so far.
func (w *Writer) Redactions() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.redactionsLocked()
}

func (w *Writer) redactionsLocked() int {
	n := w.ended + w.textRedacts
	for _, cs := range w.chans {
		n += cs.out.count() + cs.in.count()
	}
	return n
}

func (w *Writer) usableLocked() error {
	if w.closed {
		return ErrClosed
	}
	return w.sink.err()
}

// elapsedLocked returns the time offset for a new record, never going
// backwards.
func (w *Writer) elapsedLocked() time.Duration {
	t := max(w.cfg.Now().Sub(w.cfg.Start), w.lastT)
	w.lastT = t
	return t
}

// endReserve is the room kept below MaxBytes for the records Close writes.
func (w *Writer) endReserveLocked() int64 {
	n := 16<<10 + int64(w.keyframes)*256
	for _, cs := range w.chans {
		n += int64(len(cs.term.backlog)) + 8<<10
	}
	return n
}

// appendLocked puts one record (type byte, head, body) into the current
// batch, for the sink to seal. Callers check for a due checkpoint once the
// screen state includes it.
func (w *Writer) appendLocked(typ Type, head, body []byte, internal bool) error {
	n := 1 + len(head) + len(body)
	frame, err := w.frameLocked(n, internal)
	if err != nil {
		return err
	}
	pt := frame[frameHeaderLen : frameHeaderLen+n]
	pt[0] = byte(typ)
	copy(pt[1:], head)
	copy(pt[1+len(head):], body)
	if typ == TypeKeyframe {
		pos := len(w.cur.buf) - len(frame)
		ch, _ := binary.Uvarint(head)
		w.cur.keys = append(w.cur.keys, keyRef{pos, IndexEntry{Seq: w.seq, Time: w.lastT, Channel: int(ch)}})
	}
	return nil
}

// frameLocked makes room in the current batch for a sealed record of n
// plaintext bytes and returns it with its clear header filled in, or
// ErrSizeCap. Unless internal, a record that would take the file past
// MaxBytes is dropped instead (and the first drop recorded).
func (w *Writer) frameLocked(n int, internal bool) ([]byte, error) {
	flen := frameHeaderLen + n + tagLen + chainLen
	if !internal && w.cfg.MaxBytes > 0 && w.size+int64(flen)+w.endReserveLocked() > w.cfg.MaxBytes {
		w.dropped++
		if !w.capped {
			w.capped = true
			w.cfg.Logger.Warn("recording size cap reached; further records are dropped",
				"recording", w.cfg.RecordingID, "max_bytes", w.cfg.MaxBytes)
			ev, _ := json.Marshal(eventBody{Kind: "recording.size_cap", Detail: map[string]string{
				"max_bytes": strconv.FormatInt(w.cfg.MaxBytes, 10),
			}})
			w.appendLocked(TypeEvent, ev, nil, true)
			w.failed(ErrSizeCap)
		}
		return nil, ErrSizeCap
	}
	t := w.elapsedLocked()
	w.seq++
	if cap(w.cur.buf)-len(w.cur.buf) < flen {
		if len(w.cur.buf) > 0 {
			w.cur.full = true
			w.submitLocked()
		}
		if cap(w.cur.buf) < flen {
			w.cur.buf = make([]byte, 0, flen) // a large media sample
		}
	}
	pos := len(w.cur.buf)
	w.cur.buf = w.cur.buf[:pos+flen]
	frame := w.cur.buf[pos:]
	putFrameHeader(frame, flen-4, w.seq, int64(t), kindSealed)
	w.size += int64(flen)
	w.sinceCP++
	return frame, nil
}

// maybeCheckpointLocked writes a keyframe and a signed checkpoint when
// records arrived and the checkpoint interval has passed.
func (w *Writer) maybeCheckpointLocked() {
	now := w.cfg.Now()
	if w.sinceCP == 0 || now.Sub(w.lastCP) < w.cfg.CheckpointInterval {
		return
	}
	w.checkpointLocked(kindCheckpoint)
	w.lastCP = now
}

// checkpointLocked writes a keyframe of each channel whose screen
// changed, in channel order, then a signed checkpoint or end record.
func (w *Writer) checkpointLocked(kind byte) {
	for _, ch := range slices.Sorted(maps.Keys(w.chans)) {
		if cs := w.chans[ch]; cs.term.dirty {
			w.keyframeLocked(ch, cs)
		}
	}
	t := w.elapsedLocked()
	w.seq++
	w.cur.sign, w.cur.seq, w.cur.t = kind, w.seq, t
	w.cur.stats = Stats{
		Redactions: w.redactionsLocked(),
		Dropped:    w.dropped,
		Capped:     w.capped,
	}
	w.submitLocked()
	w.size += 1024 // a checkpoint's JSON and signature, roughly
	w.sinceCP = 0
}

// keyframeLocked writes a keyframe of channel ch's screen.
func (w *Writer) keyframeLocked(ch int, cs *chanState) {
	snap := cs.term.keyframe()
	cols, rows := cs.term.size()
	w.keyframes++
	w.appendLocked(TypeKeyframe, w.headLocked(ch, cols, rows), snap, true)
}

// Close flushes held-back redaction state, writes the signed end record,
// stops the goroutines and closes the file if Create opened it. It is
// idempotent and returns the first write error.
func (w *Writer) Close() error {
	w.once.Do(func() {
		w.mu.Lock()
		if w.sink.err() == nil {
			for _, ch := range slices.Sorted(maps.Keys(w.chans)) {
				w.flushChanLocked(ch, w.chans[ch])
			}
			if n := w.redactionsLocked(); n > 0 {
				ev, _ := json.Marshal(eventBody{Kind: "recording.redactions", Detail: map[string]string{
					"count": strconv.Itoa(n),
				}})
				w.appendLocked(TypeEvent, ev, nil, true)
			}
			w.checkpointLocked(kindEnd)
		}
		w.closed = true
		w.mu.Unlock()
		close(w.stop)
		w.sink.close()
		w.wg.Wait()
		w.closeErr = w.sink.err()
		if w.closer != nil {
			if err := w.closer.Close(); err != nil && w.closeErr == nil {
				w.closeErr = fmt.Errorf("recorder: %w", err)
			}
		}
	})
	return w.closeErr
}

// failed calls OnFailure with err the first time a record is refused.
// It runs on a goroutine of the Writer's, so that neither the Writer's
// lock nor a sink goroutine is held while the owner reacts (the gateway
// ends the session, which closes this Writer).
func (w *Writer) failed(err error) {
	if w.cfg.OnFailure == nil {
		return
	}
	w.failOnce.Do(func() {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			w.cfg.OnFailure(err)
		}()
	})
}

// submitLocked hands the current batch to the sink and starts a new one.
func (w *Writer) submitLocked() {
	w.sink.submit(w.cur)
	w.cur = w.sink.newBatch()
}

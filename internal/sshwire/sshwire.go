// Package sshwire adapts a network connection for golang.org/x/crypto/ssh,
// whose transport writes through a 4 KiB buffer: a 32 KiB channel packet
// leaves in two write calls, the buffer's first 4 KiB and then the rest.
// On loopback each of those calls cost about as much CPU as the bytes it
// carried (the kernel runs the receiving side's TCP in the sender's call),
// so a bulk transfer through the bastion, two SSH connections per shell,
// spent more CPU in write(2) than on encryption.
//
// Wrap gives the transport a connection whose writes go into a queue that
// one goroutine drains with as few calls as the peer's pace allows: while
// one write is in the kernel, the next packets collect behind it and leave
// together. A lone packet is written at once, as before; nothing waits for
// more data to arrive. Reads are left alone: a larger read buffer measured
// no faster and would cost every idle connection its memory.
package sshwire

import (
	"errors"
	"net"
	"os"
	"sync"
	"time"
)

// Sizes of a Conn's queue.
const (
	// maxQueued is how many bytes Write queues before it waits for the
	// connection to take them.
	maxQueued = 256 << 10
	// closeFlush bounds how long Close waits for queued bytes to leave.
	closeFlush = 500 * time.Millisecond
)

// queueBufs holds queue buffers between bursts, so that an idle connection
// keeps none.
var queueBufs = sync.Pool{New: func() any { return new([]byte) }}

// Conn is a net.Conn with a write queue. Write and Close are safe for
// concurrent use.
type Conn struct {
	net.Conn

	mu       sync.Mutex
	cond     *sync.Cond // signalled when queue, err or closing change
	queue    *[]byte    // bytes written, not yet taken by the writer; nil when none
	err      error      // the first write error; later Writes return it
	closing  bool
	done     chan struct{} // closed when the writer goroutine has stopped
	closeErr error
}

// Wrap returns c with a write queue. The returned Conn owns c and a
// goroutine that writes to it; Close stops both.
func Wrap(c net.Conn) *Conn {
	w := &Conn{Conn: c, done: make(chan struct{})}
	w.cond = sync.NewCond(&w.mu)
	go w.writer()
	return w
}

// queued is how many bytes wait in the queue.
func (w *Conn) queued() int {
	if w.queue == nil {
		return 0
	}
	return len(*w.queue)
}

// Write queues p for the writer goroutine. It waits while maxQueued bytes
// are queued, and returns the first error a write to the connection had.
func (w *Conn) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.queued() >= maxQueued && w.err == nil && !w.closing {
		w.cond.Wait()
	}
	switch {
	case w.err != nil:
		return 0, w.err
	case w.closing:
		return 0, net.ErrClosed
	}
	if w.queue == nil {
		w.queue = queueBufs.Get().(*[]byte)
		w.cond.Broadcast()
	}
	*w.queue = append(*w.queue, p...)
	return len(p), nil
}

// writer writes queued bytes to the connection until Close, then writes
// what is left (for at most closeFlush) and closes it.
func (w *Conn) writer() {
	defer close(w.done)
	for {
		w.mu.Lock()
		for w.queue == nil && !w.closing {
			w.cond.Wait()
		}
		if w.queue == nil || w.err != nil {
			w.mu.Unlock()
			break
		}
		buf := w.queue
		w.queue = nil
		w.cond.Broadcast() // room for waiting writers
		w.mu.Unlock()

		_, err := w.Conn.Write(*buf)
		if cap(*buf) <= 2*maxQueued {
			*buf = (*buf)[:0]
			queueBufs.Put(buf)
		}
		w.mu.Lock()
		if err != nil && w.err == nil {
			w.err = err
		}
		w.cond.Broadcast()
		w.mu.Unlock()
	}
	w.closeErr = w.Conn.Close()
}

// Close writes the queued bytes, waiting at most half a second for the
// peer to take them, and closes the connection. It is idempotent.
func (w *Conn) Close() error {
	w.mu.Lock()
	if !w.closing {
		w.closing = true
		w.cond.Broadcast()
		// Also bounds a write already in progress.
		w.Conn.SetWriteDeadline(time.Now().Add(closeFlush))
	}
	w.mu.Unlock()
	<-w.done
	if errors.Is(w.closeErr, os.ErrClosed) || errors.Is(w.closeErr, net.ErrClosed) {
		return nil
	}
	return w.closeErr
}

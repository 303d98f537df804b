package sshwire

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countConn counts the writes that reach a connection.
type countConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// TestRoundTrip sends random chunks from concurrent writers over loopback
// TCP, both ends wrapped: every chunk arrives whole and in its writer's
// order, and the reader sees EOF after the writer's Close.
func TestRoundTrip(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	w := Wrap(raw)
	rc, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	r := Wrap(rc)
	defer r.Close()

	// Each writer sends chunks of its id repeated, prefixed by id and length.
	const writers, chunks = 4, 300
	var wg sync.WaitGroup
	for id := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(id), 9))
			for range chunks {
				n := 1 + rng.IntN(40<<10)
				p := append([]byte{byte(id), byte(n >> 16), byte(n >> 8), byte(n)}, bytes.Repeat([]byte{byte('a' + id)}, n)...)
				if _, err := w.Write(p); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	done := make(chan error, 1)
	go func() {
		var got [writers]int
		for {
			var h [4]byte
			if _, err := io.ReadFull(r, h[:]); err != nil {
				if errors.Is(err, io.EOF) {
					for id, n := range got {
						if n != chunks {
							done <- fmt.Errorf("writer %d: got %d chunks, want %d", id, n, chunks)
							return
						}
					}
					done <- nil
				} else {
					done <- err
				}
				return
			}
			id, n := int(h[0]), int(h[1])<<16|int(h[2])<<8|int(h[3])
			if id >= writers {
				done <- errors.New("chunks interleaved: bad header")
				return
			}
			body := make([]byte, n)
			if _, err := io.ReadFull(r, body); err != nil {
				done <- err
				return
			}
			if !bytes.Equal(body, bytes.Repeat([]byte{byte('a' + id)}, n)) {
				done <- errors.New("chunks interleaved: mixed body")
				return
			}
			got[id]++
		}
	}()
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestCoalesce: writes queued while the connection is busy leave in one
// write. net.Pipe's Write returns only once the reader took every byte, so
// with the reader waiting until all 1000 Writes returned, at most two
// writes reach the pipe: one taken before, one with the rest.
func TestCoalesce(t *testing.T) {
	a, b := net.Pipe()
	cc := &countConn{Conn: a}
	w := Wrap(cc)
	for i := range 1000 {
		if _, err := w.Write(bytes.Repeat([]byte{byte(i)}, 100)); err != nil {
			t.Fatal(err)
		}
	}
	got := make(chan []byte)
	go func() {
		p, _ := io.ReadAll(b)
		got <- p
	}()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	p := <-got
	if len(p) != 100*1000 {
		t.Fatalf("read %d bytes, want %d", len(p), 100*1000)
	}
	for i := range 1000 {
		if p[100*i] != byte(i) || p[100*i+99] != byte(i) {
			t.Fatalf("chunk %d out of place", i)
		}
	}
	if n := cc.writes.Load(); n > 2 {
		t.Errorf("%d writes reached the connection, want at most 2", n)
	}
}

// TestWriteError: once the peer is gone, Write returns the error, a Write
// waiting for room wakes up with it, and Close still returns.
func TestWriteError(t *testing.T) {
	a, b := net.Pipe()
	w := Wrap(a)
	b.Close()
	big := make([]byte, maxQueued+1)
	var err error
	for range 10 {
		if _, err = w.Write(big); err != nil {
			break
		}
	}
	if !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("Write after the peer closed: %v, want %v", err, io.ErrClosedPipe)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// TestCloseStuckPeer: Close gives up on a peer that reads nothing after
// closeFlush, closes the connection and is idempotent; Write after Close
// fails.
func TestCloseStuckPeer(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	w := Wrap(a)
	if _, err := w.Write([]byte("never read")); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- w.Close() }()
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not return with a peer that reads nothing")
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Error("Write after Close succeeded")
	}
	if _, err := b.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("peer read after Close: %v, want EOF", err)
	}
}

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"supportgate/assist"
)

// extensionAsk is the helper's side of an agent asking for more time. A
// customer who approved in the helper has no web page to answer on (the
// link is bound to the helper), so the helper asks on its terminal, as it
// asked for the session. Its methods run on the helper's main loop.
type extensionAsk struct {
	cs    *assist.Consent
	out   io.Writer
	agent string // as the gateway verified it, printable
	tty   bool   // lines come from a terminal the customer types on

	told    *assist.Extension // the last request the customer was told of
	pending *assist.Extension // the request on screen, waiting for y or n
}

// answerTimeout bounds sending the customer's answer.
const answerTimeout = 10 * time.Second

// readLines sends each line read from r until it ends or ctx is done.
func readLines(ctx context.Context, r io.Reader) <-chan string {
	lines := make(chan string)
	go func() {
		defer close(lines)
		br := bufio.NewReader(r)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			select {
			case lines <- line:
			case <-ctx.Done():
				return
			}
		}
	}()
	return lines
}

// asking reports whether a question is on screen: the status line waits
// meanwhile, so as not to overwrite it.
func (x *extensionAsk) asking() bool { return x.pending != nil }

// seen takes the request the latest view shows, nil for none: a new one is
// asked, one that went away unanswered is said.
func (x *extensionAsk) seen(e *assist.Extension) {
	if sameExtension(e, x.told) {
		return
	}
	if e == nil {
		if x.pending != nil {
			fmt.Fprint(x.out, "\r\033[KThe request for more time was withdrawn or has lapsed.\n")
		}
		x.told, x.pending = nil, nil
		return
	}
	x.told = e
	if !x.tty {
		x.pending = nil
		fmt.Fprintf(x.out, "\r\033[K%s asks for %s more. This helper has no terminal to ask you on: the request will lapse.\n",
			x.agent, untrusted(e.By))
		return
	}
	x.pending = e
	x.prompt()
}

// prompt shows the pending question again (after a line printed above it).
func (x *extensionAsk) prompt() {
	if x.pending != nil {
		fmt.Fprintf(x.out, "\r\033[K%s asks for %s more. Allow? [y/N] ", x.agent, untrusted(x.pending.By))
	}
}

// answer takes a line the customer typed: the answer to the pending
// question (only y or yes is a yes), or nothing if none is pending. An
// empty line (an Enter pressed before the question came) asks again.
func (x *extensionAsk) answer(ctx context.Context, line string) {
	e := x.pending
	if e == nil {
		return
	}
	line = strings.TrimSpace(line)
	if line == "" {
		x.prompt()
		return
	}
	x.pending = nil
	approve := strings.EqualFold(line, "y") || strings.EqualFold(line, "yes")
	actx, cancel := context.WithTimeout(ctx, answerTimeout)
	defer cancel()
	if err := x.cs.AnswerExtension(actx, *e, approve); err != nil {
		fmt.Fprintf(x.out, "\r\033[KYour answer did not reach the gateway: %s\n", assist.Printable(err.Error(), maxError))
		x.told = nil // the request is still pending there: ask again at the next view
		return
	}
	if approve {
		fmt.Fprintf(x.out, "\r\033[KYou allowed %s more.\n", untrusted(e.By))
	} else {
		fmt.Fprint(x.out, "\r\033[KYou refused more time; the session ends as agreed.\n")
	}
}

func sameExtension(a, b *assist.Extension) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.By == b.By && (a.RequestedAt == nil) == (b.RequestedAt == nil) &&
		(a.RequestedAt == nil || a.RequestedAt.Equal(*b.RequestedAt))
}

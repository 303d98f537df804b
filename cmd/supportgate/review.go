package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"supportgate/agent"
	"supportgate/review"
)

func init() {
	register(&command{name: "review", summary: "review recordings in a local web player (decrypts on this machine only)", run: runReview})
}

// runReview implements `supportgate review --identity KEY [--listen
// 127.0.0.1:PORT] DIR|GATEWAY_URL`: it serves the review player on
// loopback until interrupted.
func runReview(env *cliEnv, args []string) error {
	fs := newFlags(env, "review", "--identity KEY [--listen 127.0.0.1:PORT] DIR|GATEWAY_URL")
	idPath := fs.String("identity", "", "age identity `file` that decrypts the recordings")
	listen := fs.String("listen", "127.0.0.1:0", "loopback `address` to serve the player on")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return &exitError{code: 2, msg: "review: exactly one DIR or GATEWAY_URL is required"}
	}
	ids, err := loadIdentities(*idPath)
	if err != nil {
		return fmt.Errorf("review: %w", err)
	}
	h, err := home(env)
	if err != nil {
		return err
	}
	key, err := h.EvidenceKey()
	if err != nil {
		return fmt.Errorf("review: evidence key: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	target := fs.Arg(0)
	var src review.Source
	reviewer := "local reviewer"
	if strings.HasPrefix(target, "https://") || strings.HasPrefix(target, "http://") {
		gs, user, err := gatewaySource(ctx, env, target)
		if err != nil {
			return err
		}
		src, reviewer = gs, user
	} else {
		if src, err = review.NewFolder(target); err != nil {
			return err
		}
		if u := env.getenv("USER"); u != "" {
			reviewer = u
		}
	}
	defer src.Close()

	if _, _, err := net.SplitHostPort(*listen); err != nil {
		return &exitError{code: 2, msg: "review: --listen: " + err.Error()}
	}
	if !review.Loopback(*listen) {
		return &exitError{code: 2, msg: "review: --listen must be a loopback address: the player serves decrypted recordings"}
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("review: %w", err)
	}
	defer ln.Close()
	srv, err := review.New(ctx, review.Config{
		Source: src, Identities: ids, Host: ln.Addr().String(), EvidenceKey: key, Reviewer: reviewer,
	})
	if err != nil {
		return err
	}
	defer srv.Close()
	fmt.Fprintf(env.stdout, "Reviewing %s\nOpen %s\n(Ctrl-C stops the player.)\n", src.Name(), srv.URL())

	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	var serveErr error
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		hs.Shutdown(sctx)
		cancel()
		serveErr = <-done
	case serveErr = <-done:
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("review: %w", serveErr)
	}
	return nil
}

// gatewaySource reviews through the gateway at url with the stored login,
// which must be an auditor's: the gateway refuses everyone else.
func gatewaySource(ctx context.Context, env *cliEnv, url string) (review.Source, string, error) {
	h, err := home(env)
	if err != nil {
		return nil, "", err
	}
	c, cfg, err := h.Client(time.Now())
	if err != nil {
		return nil, "", fmt.Errorf("review: %w", err)
	}
	if strings.TrimRight(cfg.Gateway, "/") != strings.TrimRight(url, "/") {
		return nil, "", fmt.Errorf("review: logged in to %s, not %s; run supportgate login --gateway %s --user AUDITOR first", cfg.Gateway, url, url)
	}
	src, err := review.NewGateway(c, url)
	if err != nil {
		return nil, "", err
	}
	if _, err := src.List(ctx); err != nil {
		src.Close()
		var ae *agent.APIError
		if errors.As(err, &ae) && ae.Status == http.StatusForbidden {
			return nil, "", fmt.Errorf("review: the gateway refuses %s (%s): reviewing recordings needs an auditor login", cfg.User, cfg.Role)
		}
		return nil, "", err
	}
	return src, cfg.User + "@" + url, nil
}

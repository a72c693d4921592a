package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

// kfakeServe is the hidden "kfake-serve" mode: it runs a one-broker kfake
// cluster, prints the address it listens on as the first line of stdout, and
// serves until SIGTERM or SIGINT, or, with --stdin-eof-exit, until stdin
// reaches EOF: the benchmark holds our stdin open, so a benchmark that dies
// takes its kfake with it.
func kfakeServe(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench "+kfakeServeMode, flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "host:port to listen on; port 0 picks a free port")
	stdinEOFExit := fs.Bool("stdin-eof-exit", false, "also exit when stdin reaches EOF")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	host, portStr, err := net.SplitHostPort(*addr)
	if err != nil {
		fmt.Fprintf(stderr, "kfake-serve: --addr: %v\n", err)
		return 2
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		fmt.Fprintf(stderr, "kfake-serve: --addr: bad port %q\n", portStr)
		return 2
	}
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.Ports(port),
		// kfake always asks for 127.0.0.1:port; honour the host we were given.
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, net.JoinHostPort(host, strconv.Itoa(port)))
		}),
	)
	if err != nil {
		fmt.Fprintf(stderr, "kfake-serve: %v\n", err)
		return 1
	}
	addrs := c.ListenAddrs()
	if len(addrs) != 1 {
		c.Close()
		fmt.Fprintf(stderr, "kfake-serve: cluster listens on %d addresses, want 1\n", len(addrs))
		return 1
	}
	if _, err := fmt.Fprintln(stdout, addrs[0]); err != nil {
		c.Close()
		return 1
	}

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	stdinClosed := make(chan struct{})
	if *stdinEOFExit {
		go func() {
			io.Copy(io.Discard, stdin)
			close(stdinClosed)
		}()
	}
	select {
	case <-signals:
	case <-stdinClosed:
	}
	c.Close()
	return 0
}

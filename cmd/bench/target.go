package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// brokerPackage is the broker command, built when --broker-bin is not given.
const brokerPackage = "github.com/rocketkafka/broker/cmd/broker"

// target is a running broker or kfake process.
type target struct {
	name    string
	addr    string // host:port clients bootstrap from
	cmd     *exec.Cmd
	logPath string         // the process's stderr
	stdin   io.WriteCloser // held open so kfake-serve exits when we do
	exited  chan struct{}  // closed once cmd.Wait returns
	waitErr error          // cmd.Wait's result, set before exited is closed
}

// buildBroker builds the broker command into dir and returns the binary's
// path. It needs the go tool and a working directory inside this module, as
// with go run ./cmd/bench.
func buildBroker(ctx context.Context, dir string, log io.Writer) (string, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("building the broker: %w (pass --broker-bin)", err)
	}
	bin := filepath.Join(dir, "broker")
	fmt.Fprintf(log, "building %s\n", brokerPackage)
	cmd := exec.CommandContext(ctx, goTool, "build", "-o", bin, brokerPackage)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building the broker: %w\n%s", err, strings.TrimSpace(out.String()))
	}
	return bin, nil
}

// startBroker runs the broker binary with a fresh data directory and waits
// for its "broker listening" log line.
func startBroker(ctx context.Context, bin string, extraArgs []string, dataDir, logPath string) (*target, error) {
	args := append([]string{
		"--listeners=PLAINTEXT://127.0.0.1:0",
		"--log.dirs=" + dataDir,
		"--logger.format=json",
	}, extraArgs...)
	cmd := exec.Command(bin, args...)
	addrCh := make(chan string, 1)
	w := &lineWatcher{match: func(line []byte) bool {
		var entry struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		if json.Unmarshal(line, &entry) != nil || entry.Msg != "broker listening" || entry.Addr == "" {
			return false
		}
		addrCh <- entry.Addr
		return true
	}}
	return startTarget(ctx, "broker", cmd, w, nil, nil, addrCh, logPath)
}

// startKfake re-executes this binary in kfake-serve mode and waits for the
// address it prints.
func startKfake(ctx context.Context, logPath string) (*target, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding this executable to run kfake: %w", err)
	}
	cmd := exec.Command(self, kfakeServeMode, "--addr=127.0.0.1:0", "--stdin-eof-exit")
	addrCh := make(chan string, 1)
	stdout := &lineWatcher{match: func(line []byte) bool {
		addrCh <- string(bytes.TrimSpace(line))
		return true
	}}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	return startTarget(ctx, "kfake", cmd, nil, stdout, stdin, addrCh, logPath)
}

// startTarget starts cmd with stderr going to logPath and waits until addrCh
// yields the address, the process exits, or ctx ends. stderrWatch and
// stdoutWatch, when not nil, see the process's output lines (stderr lines
// are copied to the log either way). stdin, when not nil, is the write end
// of the process's stdin, held open until the target stops.
func startTarget(ctx context.Context, name string, cmd *exec.Cmd, stderrWatch, stdoutWatch *lineWatcher, stdin io.WriteCloser, addrCh <-chan string, logPath string) (*target, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	if stderrWatch == nil {
		stderrWatch = &lineWatcher{}
	}
	stderrWatch.out = logFile
	cmd.Stderr = stderrWatch
	if stdoutWatch != nil {
		stdoutWatch.out = logFile
		cmd.Stdout = stdoutWatch
	}
	cmd.SysProcAttr = childSysProcAttr()
	t := &target{name: name, cmd: cmd, logPath: logPath, stdin: stdin, exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() {
		t.waitErr = cmd.Wait() // returns once the output copiers are done
		logFile.Close()
		close(t.exited)
	}()
	select {
	case t.addr = <-addrCh:
		return t, nil
	case <-t.exited:
		return nil, fmt.Errorf("%s exited before listening (%v)%s", name, t.waitErr, t.logTail())
	case <-ctx.Done():
		t.kill()
		return nil, fmt.Errorf("%s did not start listening: %w%s", name, ctx.Err(), t.logTail())
	}
}

// cpu returns the CPU time the target has used so far.
func (t *target) cpu() (time.Duration, error) {
	return procCPU(t.cmd.Process.Pid)
}

// stop sends SIGTERM and waits for the process to exit, killing it after
// timeout; it reports an unclean shutdown (nonzero exit) as an error.
func (t *target) stop(timeout time.Duration) error {
	select {
	case <-t.exited:
		return fmt.Errorf("%s had already exited (%v)%s", t.name, t.waitErr, t.logTail())
	default:
	}
	if err := t.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.kill()
		return fmt.Errorf("stopping %s: %w", t.name, err)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-t.exited:
	case <-timer.C:
		t.kill()
		return fmt.Errorf("%s did not exit within %v of SIGTERM; killed it%s", t.name, timeout, t.logTail())
	}
	if t.stdin != nil {
		t.stdin.Close()
	}
	if t.waitErr != nil {
		return fmt.Errorf("%s shut down uncleanly: %v%s", t.name, t.waitErr, t.logTail())
	}
	return nil
}

func (t *target) kill() {
	t.cmd.Process.Kill()
	<-t.exited
	if t.stdin != nil {
		t.stdin.Close()
	}
}

// logTail returns the last lines of the target's stderr, formatted to be
// appended to an error.
func (t *target) logTail() string {
	b, err := os.ReadFile(t.logPath)
	if err != nil || len(bytes.TrimSpace(b)) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return "\n  last lines of " + t.logPath + ":\n    " + strings.Join(lines, "\n    ")
}

// lineWatcher is an io.Writer that copies a process's output to out and
// hands each complete line to match until match returns true.
type lineWatcher struct {
	out   io.Writer
	match func(line []byte) bool

	mu      sync.Mutex
	partial []byte
	done    bool
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	if w.out != nil {
		if _, err := w.out.Write(p); err != nil {
			return 0, err
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done || w.match == nil {
		return len(p), nil
	}
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		line := w.partial[:i]
		w.partial = w.partial[i+1:]
		if w.match(line) {
			w.done, w.partial = true, nil
			break
		}
	}
	if len(w.partial) > 1<<20 { // a line this long is not what we are looking for
		w.partial = nil
	}
	return len(p), nil
}

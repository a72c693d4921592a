package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The broker has no fsync counter (its /metrics has the CommitLog position
// the last fsync covered, not how many there were), so the latency mode
// counts the broker process's fsync and fdatasync system calls from the
// outside with perf's syscall tracepoints. They are counted in the kernel:
// the broker is not stopped or slowed as it would be under strace. This
// needs perf and the right to trace another process (root, or
// kernel.perf_event_paranoid low enough).
var fsyncEvents = []string{"syscalls:sys_enter_fsync", "syscalls:sys_enter_fdatasync"}

// perfUsable checks that perf can count the syscall tracepoints at all, by
// counting them for a short command of its own.
func perfUsable() error {
	perf, err := exec.LookPath("perf")
	if err != nil {
		return errors.New("perf is not installed")
	}
	out, err := exec.Command(perf, "stat", "-x", ",", "-e", strings.Join(fsyncEvents, ","), "--", "true").CombinedOutput()
	if err != nil {
		return fmt.Errorf("perf stat of the fsync tracepoints failed: %v: %s", err, firstLine(strings.TrimSpace(string(out))))
	}
	for _, ev := range fsyncEvents {
		if !bytes.Contains(out, []byte(ev)) || bytes.Contains(out, []byte("<not supported>")) {
			return fmt.Errorf("perf cannot count %s: %s", ev, firstLine(strings.TrimSpace(string(out))))
		}
	}
	return nil
}

// fsyncCounter is a perf stat process counting one process's fsyncs.
type fsyncCounter struct {
	cmd     *exec.Cmd
	out     string // perf's CSV output file
	stderr  bytes.Buffer
	exited  chan struct{}
	started time.Time // when perf was known to be counting
}

// startFsyncCounter attaches perf to pid and returns once it counts: perf
// prints one line per event every 100ms, and the first line shows the
// counters are attached. Threads the process creates later are counted
// too (perf's counters are inherited).
func startFsyncCounter(ctx context.Context, pid int, out string) (*fsyncCounter, error) {
	perf, err := exec.LookPath("perf")
	if err != nil {
		return nil, errors.New("perf is not installed")
	}
	f := &fsyncCounter{out: out, exited: make(chan struct{})}
	f.cmd = exec.Command(perf, "stat", "-x", ",", "-I", "100", "-o", out,
		"-e", strings.Join(fsyncEvents, ","), "-p", strconv.Itoa(pid))
	f.cmd.Stderr = &f.stderr
	f.cmd.SysProcAttr = childSysProcAttr()
	if err := f.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting perf: %w", err)
	}
	go func() {
		_ = f.cmd.Wait()
		close(f.exited)
	}()
	deadline := time.Now().Add(fsyncReadyTimeout)
	for {
		if n, _ := f.read(); n > 0 {
			f.started = time.Now()
			return f, nil
		}
		select {
		case <-f.exited:
			return nil, fmt.Errorf("perf exited before counting (%v): %s", f.cmd.ProcessState, firstLine(strings.TrimSpace(f.stderr.String())))
		case <-ctx.Done():
			f.kill()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond): // a poll interval, not a synchronisation
		}
		if time.Now().After(deadline) {
			f.kill()
			return nil, fmt.Errorf("perf printed no count within %v", fsyncReadyTimeout)
		}
	}
}

// stop ends perf (SIGINT makes it print the last, partial interval) and
// returns the calls counted and the time they were counted over.
func (f *fsyncCounter) stop() (int64, time.Duration, error) {
	span := time.Since(f.started)
	_ = f.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-f.exited:
	case <-time.After(5 * time.Second):
		f.kill()
		return 0, span, errors.New("perf did not exit within 5s of SIGINT")
	}
	_, total, err := f.readAll()
	return total, span, err
}

func (f *fsyncCounter) kill() {
	_ = f.cmd.Process.Kill()
	<-f.exited
}

// read returns how many count lines perf has written so far.
func (f *fsyncCounter) read() (int, error) {
	n, _, err := f.readAll()
	return n, err
}

// readAll parses perf's interval CSV: "time,count,unit,event,..." per
// event and interval; a count of "<not counted>" is an interval in which
// the process did not run.
func (f *fsyncCounter) readAll() (lines int, total int64, err error) {
	data, err := os.ReadFile(f.out)
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line, ",")
		if len(fields) < 4 {
			continue // a partly written line
		}
		event := fields[3]
		known := false
		for _, ev := range fsyncEvents {
			known = known || event == ev
		}
		if !known {
			continue
		}
		lines++
		switch count := fields[1]; count {
		case "<not counted>":
		case "<not supported>":
			return lines, 0, fmt.Errorf("perf cannot count %s", event)
		default:
			n, err := strconv.ParseInt(count, 10, 64)
			if err != nil {
				return lines, 0, fmt.Errorf("perf output line %q: bad count", line)
			}
			total += n
		}
	}
	return lines, total, nil
}

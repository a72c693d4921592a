//go:build !linux

package main

import (
	"errors"
	"syscall"
	"time"
)

var errNoProc = errors.New("measuring a process's CPU time needs Linux's /proc")

func procCPU(int) (time.Duration, error) { return 0, errNoProc }

func selfCPU() (time.Duration, error) { return 0, errNoProc }

func childSysProcAttr() *syscall.SysProcAttr { return nil }

func procPeakRSS(int) (int64, error) { return 0, errNoProc }

package netpoll

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"sync"
)

// readBufferSize is the per-connection read buffer. It lets one read(2)
// pick up several small pipelined requests; frames larger than it are read
// straight into their own buffer, bypassing it.
const readBufferSize = 4 << 10

// FrameSizeError reports a size prefix that is negative or larger than
// Config.MaxFrameBytes. It is detected before anything is allocated for the
// frame, so a hostile prefix cannot make the server reserve memory.
type FrameSizeError struct {
	Size int32
	Max  int32
}

func (e *FrameSizeError) Error() string {
	return fmt.Sprintf("netpoll: frame size %d outside [0, %d]", e.Size, e.Max)
}

// frameReader splits a byte stream into size-prefixed frames. It is kept
// apart from the connection so that the fuzz test exercises exactly the code
// that faces the network.
type frameReader struct {
	r    *bufio.Reader
	max  int32
	size [4]byte
}

func newFrameReader(r io.Reader, max int32) *frameReader {
	return &frameReader{r: bufio.NewReaderSize(r, readBufferSize), max: max}
}

// next returns the next frame in a slice of its own, which the handler
// may keep (or give back with recycleFrame). It returns io.EOF only when
// the stream ends cleanly between frames and io.ErrUnexpectedEOF when it
// ends inside one.
func (fr *frameReader) next() ([]byte, error) {
	if _, err := io.ReadFull(fr.r, fr.size[:]); err != nil {
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(fr.size[:]))
	if n < 0 || n > fr.max {
		return nil, &FrameSizeError{Size: n, Max: fr.max}
	}
	frame := fr.alloc(int(n))
	if _, err := io.ReadFull(fr.r, frame); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return frame, nil
}

// Frames of recyclableFrameBytes and more are allocated at their size
// and, once the handler has kept nothing of them, filed in framePools by
// the power of two at or below their capacity, to hold a later frame.
// Producing to many partitions sends frames of many megabytes; allocating
// each afresh costs page faults and zeroing of memory the frame overwrites
// anyway, more than the copy from the socket.
const recyclableFrameBytes = 64 << 10

var framePools [64]sync.Pool // of *[]byte, by floor(log2(capacity))

// alloc returns a slice of n bytes for a frame: a recycled buffer that
// can hold it within the frame limit, or a new one of exactly n bytes.
func (fr *frameReader) alloc(n int) []byte {
	if n < recyclableFrameBytes {
		return make([]byte, n)
	}
	// Buffers filed one class below n's may be large enough too; those
	// of n's class (rounded up) always are.
	ceil := bits.Len(uint(n - 1))
	for _, c := range []int{ceil, ceil - 1} {
		b, ok := framePools[c].Get().(*[]byte)
		if !ok {
			continue
		}
		if cap(*b) >= n && cap(*b) <= int(fr.max) {
			return (*b)[:n]
		}
		framePools[c].Put(b)
	}
	return make([]byte, n)
}

// recycleFrame gives frame's memory to a later frame; the caller must not
// use frame afterwards.
func recycleFrame(frame []byte) {
	if cap(frame) < recyclableFrameBytes {
		return
	}
	frame = frame[:0]
	framePools[bits.Len(uint(cap(frame)))-1].Put(&frame)
}

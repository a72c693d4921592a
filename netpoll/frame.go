package netpoll

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
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

// next returns the next frame in a freshly allocated slice, which the
// handler may keep. It returns io.EOF only when the stream ends cleanly
// between frames and io.ErrUnexpectedEOF when it ends inside one.
func (fr *frameReader) next() ([]byte, error) {
	if _, err := io.ReadFull(fr.r, fr.size[:]); err != nil {
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(fr.size[:]))
	if n < 0 || n > fr.max {
		return nil, &FrameSizeError{Size: n, Max: fr.max}
	}
	frame := make([]byte, n)
	if _, err := io.ReadFull(fr.r, frame); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return frame, nil
}

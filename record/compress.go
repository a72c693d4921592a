package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// decompress returns the decompressed form of src, at most limit bytes.
func decompress(codec Codec, src []byte, limit int) ([]byte, error) {
	switch codec {
	case Gzip:
		return gunzip(src, limit)
	case Snappy:
		return unsnappy(src, limit)
	case LZ4:
		return unlz4(src, limit)
	default:
		return unzstd(src, limit)
	}
}

func corrupt(codec Codec, err error) error {
	return fmt.Errorf("%w: %v: %v", ErrCorrupt, codec, err)
}

// initialCap guesses the decompressed size of src when the format does not
// say; Kafka batches commonly compress 2-5x.
func initialCap(src []byte, limit int) int {
	return int(min(4*int64(len(src))+512, int64(limit)))
}

// readLimited reads r to EOF into a new buffer of at most limit bytes.
// The buffer starts at hint, the expected size, plus the byte that shows
// EOF without growing, and then doubles rather than trusting any size the
// stream claims.
func readLimited(codec Codec, r io.Reader, hint, limit int) ([]byte, error) {
	buf := make([]byte, 0, hint+1)
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, min(cap(buf), limit+1-len(buf)))
		}
		// One byte past the limit is enough to know it is exceeded.
		n, err := r.Read(buf[len(buf):min(cap(buf), limit+1)])
		buf = buf[:len(buf)+n]
		if len(buf) > limit {
			return nil, ErrTooLarge
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, corrupt(codec, err)
		}
	}
}

// gzipReader pairs a reader with the bytes.Reader it reads from, so
// neither is allocated per batch: a gzip.Reader carries tens of KiB of
// inflate state.
type gzipReader struct {
	src bytes.Reader
	zr  gzip.Reader
}

var gzipReaders = sync.Pool{New: func() any { return new(gzipReader) }}

func gunzip(src []byte, limit int) ([]byte, error) {
	g := gzipReaders.Get().(*gzipReader)
	defer func() {
		g.src.Reset(nil) // do not pin the batch from the pool
		gzipReaders.Put(g)
	}()
	g.src.Reset(src)
	if err := g.zr.Reset(&g.src); err != nil {
		return nil, corrupt(Gzip, err)
	}
	// A gzip member ends with its decompressed size (mod 4 GiB); src
	// is long enough, since Reset read the 10 byte header. The size is
	// only a hint, bounded so that a forged one cannot make us allocate
	// much: deflate expands at most 1032-fold.
	hint := int(min(int64(binary.LittleEndian.Uint32(src[len(src)-4:])), 1032*int64(len(src)), int64(limit)))
	return readLimited(Gzip, &g.zr, hint, limit)
}

type lz4Reader struct {
	src bytes.Reader
	zr  *lz4.Reader
}

var lz4Readers = sync.Pool{New: func() any {
	l := new(lz4Reader)
	l.zr = lz4.NewReader(&l.src)
	return l
}}

func unlz4(src []byte, limit int) ([]byte, error) {
	l := lz4Readers.Get().(*lz4Reader)
	defer func() {
		l.src.Reset(nil)
		l.zr.Reset(&l.src) // hands its block buffer back to lz4's pool
		lz4Readers.Put(l)
	}()
	l.src.Reset(src)
	l.zr.Reset(&l.src)
	return readLimited(LZ4, l.zr, initialCap(src, limit), limit)
}

// xerialMagic starts the framing that the Java client's snappy-java
// writes: the magic, a big endian int32 version and minimum compatible
// version, then blocks, each a big endian int32 length and a raw snappy
// block. Other clients write one raw snappy block.
const (
	xerialMagic      = "\x82SNAPPY\x00"
	xerialHeaderSize = 16
)

func unsnappy(src []byte, limit int) ([]byte, error) {
	if !bytes.HasPrefix(src, []byte(xerialMagic)) {
		n, err := snappy.DecodedLen(src)
		if err != nil {
			return nil, corrupt(Snappy, err)
		}
		if n > limit {
			return nil, ErrTooLarge
		}
		out, err := snappy.Decode(make([]byte, n), src)
		if err != nil {
			return nil, corrupt(Snappy, err)
		}
		return out, nil
	}
	if len(src) < xerialHeaderSize {
		return nil, corrupt(Snappy, errors.New("short xerial header"))
	}
	blocks := src[xerialHeaderSize:]
	// Sum the blocks' decoded lengths first: that enforces the limit
	// before anything is decoded and lets the output be allocated once.
	total := 0
	for p := blocks; len(p) > 0; {
		blk, rest, err := nextXerialBlock(p)
		if err != nil {
			return nil, err
		}
		n, err := snappy.DecodedLen(blk)
		if err != nil {
			return nil, corrupt(Snappy, err)
		}
		if n > limit-total {
			return nil, ErrTooLarge
		}
		total += n
		p = rest
	}
	out := make([]byte, total)
	o := out
	for p := blocks; len(p) > 0; {
		blk, rest, _ := nextXerialBlock(p)
		n, _ := snappy.DecodedLen(blk)
		if _, err := snappy.Decode(o[:n:n], blk); err != nil {
			return nil, corrupt(Snappy, err)
		}
		o, p = o[n:], rest
	}
	return out, nil
}

func nextXerialBlock(p []byte) (blk, rest []byte, err error) {
	if len(p) < 4 {
		return nil, nil, corrupt(Snappy, errors.New("truncated xerial block length"))
	}
	n := binary.BigEndian.Uint32(p)
	p = p[4:]
	if uint64(n) > uint64(len(p)) {
		return nil, nil, corrupt(Snappy, errors.New("truncated xerial block"))
	}
	return p[:n], p[n:], nil
}

// zstdWindowAllowance is how far past the caller's limit a zstd frame may
// decode before it is cut off. The decoder refuses frames whose declared
// window exceeds its output cap, and Java producers stream, declaring a
// window from the compression level rather than the batch size: 2 MiB at
// the default level 3, 8 MiB at level 19. Smaller limits would reject
// ordinary batches, so the decoder's cap is raised to this and the limit
// is applied to the result instead. DecodeAll needs no memory beyond its
// output, so a hostile frame can make us allocate at most about
// max(limit, 8 MiB) whatever window it declares.
const zstdWindowAllowance = 8 << 20

// zstdDecoders holds single-threaded decoders: the output cap is a decoder
// option, and the callers' limits differ, so decoders cannot be shared.
var zstdDecoders = sync.Pool{New: func() any {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		panic(err) // only invalid options fail
	}
	return d
}}

func unzstd(src []byte, limit int) ([]byte, error) {
	size := initialCap(src, limit)
	var fh zstd.Header
	if fh.Decode(src) == nil && fh.HasFCS {
		if fh.FrameContentSize > uint64(limit) {
			return nil, ErrTooLarge
		}
		size = int(fh.FrameContentSize)
	}
	d := zstdDecoders.Get().(*zstd.Decoder)
	defer zstdDecoders.Put(d)
	if err := d.ResetWithOptions(nil, zstd.WithDecoderMaxMemory(uint64(max(limit, zstdWindowAllowance)))); err != nil {
		return nil, corrupt(Zstd, err)
	}
	out, err := d.DecodeAll(src, make([]byte, 0, size))
	switch {
	case errors.Is(err, zstd.ErrDecoderSizeExceeded), errors.Is(err, zstd.ErrWindowSizeExceeded):
		return nil, ErrTooLarge
	case err != nil:
		return nil, corrupt(Zstd, err)
	case len(out) > limit:
		return nil, ErrTooLarge
	}
	return out, nil
}

// compress appends the compressed form of src to dst.
func compress(dst, src []byte, codec Codec) ([]byte, error) {
	switch codec {
	case Gzip:
		w := gzipWriters.Get().(*gzip.Writer)
		defer gzipWriters.Put(w)
		return compressStream(dst, src, w)
	case Snappy:
		n := snappy.MaxEncodedLen(len(src))
		if n < 0 {
			return dst, ErrTooLarge
		}
		start := len(dst)
		dst = append(dst, make([]byte, n)...)
		enc := snappy.Encode(dst[start:], src)
		return dst[:start+len(enc)], nil
	case LZ4:
		w := lz4Writers.Get().(*lz4.Writer)
		defer lz4Writers.Put(w)
		return compressStream(dst, src, w)
	default:
		return zstdEncoder().EncodeAll(src, dst), nil
	}
}

// appender is an io.Writer that appends to a slice, so stream encoders
// write straight into the batch.
type appender struct{ b []byte }

func (a *appender) Write(p []byte) (int, error) {
	a.b = append(a.b, p...)
	return len(p), nil
}

type streamEncoder interface {
	io.WriteCloser
	Reset(io.Writer)
}

func compressStream(dst, src []byte, w streamEncoder) ([]byte, error) {
	a := appender{b: dst}
	w.Reset(&a)
	defer w.Reset(nil) // do not pin the batch from the pool
	if _, err := w.Write(src); err != nil {
		return dst, err
	}
	if err := w.Close(); err != nil {
		return dst, err
	}
	return a.b, nil
}

var (
	gzipWriters = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}
	lz4Writers  = sync.Pool{New: func() any { return lz4.NewWriter(nil) }}
	// zstdEncoder is shared: EncodeAll is safe for concurrent use and
	// keeps its own set of encoders. It is built on first use because it
	// preallocates per-CPU state.
	zstdEncoder = sync.OnceValue(func() *zstd.Encoder {
		e, err := zstd.NewWriter(nil)
		if err != nil {
			panic(err)
		}
		return e
	})
)

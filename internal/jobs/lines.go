package jobs

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// MaxLineBytes is the longest output line passed on whole; longer lines are cut and say so, so that one
// enormous line (a rendered query, a progress bar without newlines) can neither stall nor exhaust the reader.
const MaxLineBytes = 64 << 10

// cutNote ends a line that was cut.
var cutNote = fmt.Sprintf(" [dagctl: line cut at %d bytes]", MaxLineBytes)

// readLines reads r line by line and calls emit for each, without the line ending, until EOF or an error.
// Invalid UTF-8 is replaced, so that every line can be stored and shown as text.
func readLines(r io.Reader, emit func(string)) error {
	br := bufio.NewReaderSize(r, MaxLineBytes)
	cutting := false // inside a line whose first MaxLineBytes were emitted already
	for {
		chunk, err := br.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			if !cutting {
				emit(toText(chunk) + cutNote)
				cutting = true
			}
			continue
		case len(chunk) > 0 && cutting:
			cutting = false // the rest of a cut line
		case len(chunk) > 0:
			emit(toText(trimLineEnd(chunk)))
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func trimLineEnd(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return b
}

func toText(b []byte) string {
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

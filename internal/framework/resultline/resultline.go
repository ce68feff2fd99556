// Package resultline reads the result a framework's job helper prints among the tool's own output: one line
// starting with a marker, or, when it is long, a run of "marker part I/N" lines (a line of a job's output is capped
// on its way to the bot, a result is not). The helpers print it last; a job's code can print one too, which is why
// the bot takes only what the planners parse, and the last complete result.
package resultline

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ErrNone is the output holding no result at all.
var ErrNone = errors.New("no result line")

// Last returns the JSON of the last result in a job's output: a line starting with marker, or the last complete run of
// `marker part I/N` lines joined. Lines may be long, so the reader is not line-limited.
func Last(r io.Reader, marker, tool string) (string, error) {
	br := bufio.NewReader(r)
	var (
		found       string
		seen        bool
		parts       strings.Builder
		next, total int // the part expected next (1-based) and the number of parts; 0 outside a run
		partErr     error
	)
	for {
		line, err := br.ReadString('\n')
		line = strings.TrimRight(line, "\r\n")
		if rest, ok := strings.CutPrefix(line, marker+" "); ok {
			if piece, ok := strings.CutPrefix(rest, "part "); ok {
				n, of, text, perr := parsePart(marker, piece)
				switch {
				case perr != nil:
				case n == 1:
					parts.Reset()
					next, total = 1, of
				case next == 0:
					perr = fmt.Errorf("%s part %d/%d without the parts before it", marker, n, of)
				case n != next || of != total:
					perr = fmt.Errorf("%s part %d/%d out of order (expected %d/%d)", marker, n, of, next, total)
				}
				partErr = perr
				if perr != nil {
					next, total = 0, 0
				} else {
					parts.WriteString(text)
					if next++; next > total {
						found, seen = parts.String(), true
						next, total = 0, 0
					}
				}
			} else {
				found, seen, partErr = strings.TrimSpace(rest), true, nil
				next, total = 0, 0
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", fmt.Errorf("reading %s output: %w", tool, err)
		}
	}
	switch {
	case next > 0:
		return "", fmt.Errorf("%s result is incomplete: got %d of %d parts", marker, next-1, total)
	case partErr != nil && !seen:
		return "", partErr
	case !seen:
		return "", ErrNone
	}
	return found, nil
}

func parsePart(marker, s string) (n, of int, text string, err error) {
	counts, text, _ := strings.Cut(s, " ")
	num, den, ok := strings.Cut(counts, "/")
	if ok {
		n, err = strconv.Atoi(num)
		if err == nil {
			of, err = strconv.Atoi(den)
		}
	}
	if !ok || err != nil || n < 1 || n > of {
		return 0, 0, "", fmt.Errorf("malformed %s part header %q", marker, counts)
	}
	return n, of, text, nil
}

package comments

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// A doc is markdown as a flat stream of blocks and containers, so that it can be cut into parts of bounded
// size without breaking its structure. Containers (a section with its heading, a <details> block, a table with
// its header) are closed at the end of a part and reopened at the start of the next; a container is written
// only once something goes into it, so a heading never ends a part on its own. Code blocks are atomic: moved to
// the next part whole, or, when bigger than a whole part, truncated with a pointer to the full log.
type doc struct {
	blocks []block
}

type blockKind uint8

const (
	blockText  blockKind = iota // markdown, written whole (ends with "\n")
	blockOpen                   // a container: open, close and reopen text
	blockClose                  // ends the innermost container
	blockCode                   // a fenced code block
)

type block struct {
	kind blockKind
	// text is the markdown of blockText, the opening text of blockOpen and the content of blockCode.
	text   string
	close  string // blockOpen: what ends the container
	reopen string // blockOpen: what starts it again at the top of the next part
	lang   string // blockCode: the info string ("diff", "text")
	// keepTail: when a code block must be truncated, keep its end (errors) rather than its start (diffs).
	keepTail bool
	// maxLines (blockCode) caps the lines shown even when more would fit; 0: no cap.
	maxLines int
	// logURL (blockOpen, blockCode) is where the full text is: truncations inside point there.
	logURL string
}

func (d *doc) text(s string) { d.blocks = append(d.blocks, block{kind: blockText, text: s}) }

func (d *doc) open(open, close, reopen, logURL string) {
	d.blocks = append(d.blocks, block{kind: blockOpen, text: open, close: close, reopen: reopen, logURL: logURL})
}

func (d *doc) close() { d.blocks = append(d.blocks, block{kind: blockClose}) }

// details opens a collapsed <details> block whose summary is raw HTML (escape it: htmlText, htmlCode).
func (d *doc) details(summaryHTML string) {
	d.open("<details><summary>"+summaryHTML+"</summary>\n\n", "\n</details>\n\n",
		"<details><summary>"+summaryHTML+" (continued)</summary>\n\n", "")
}

// table opens a table; its header is repeated in every part the table spans.
func (d *doc) table(header string) { d.open(header, "\n", header, "") }

// codeBlock adds a fenced code block (lang, text, logURL, keepTail, maxLines of b) holding text verbatim,
// after sanitize.
func (d *doc) codeBlock(b block) {
	b.kind, b.text = blockCode, sanitize(b.text)
	d.blocks = append(d.blocks, b)
}

// pageOptions say how to cut a doc.
type pageOptions struct {
	limit    int              // the size of a part, as measured by size
	size     func(string) int // runes (comments) or bytes (check runs)
	maxParts int              // 0: no cap
	// header starts part n (1-based), e.g. its marker. Not counted as content.
	header func(part int) string
	// continued ends every part but the last.
	continued string
	// truncated ends the last part when the doc did not fit in maxParts; logURL is the innermost known log.
	truncated func(logURL string) string
}

func runeCount(s string) int { return utf8.RuneCountInString(s) }
func byteCount(s string) int { return len(s) }

type frame struct {
	b       *block
	written bool // its opening text is in the current part
	carried bool // it was open at the end of an earlier part: reopen rather than open
}

type pager struct {
	o       pageOptions
	budget  int // limit minus what the end of a part may need
	parts   []string
	cur     strings.Builder
	used    int
	stack   []frame
	closing int  // size of the close texts of every open container
	content bool // the current part holds something besides its header
	stopped bool // maxParts was reached: the rest is dropped
}

// paginate cuts d into parts of at most o.limit each.
func paginate(d *doc, o pageOptions) []string {
	p := &pager{o: o}
	reserve := o.size(o.continued)
	urls := map[string]bool{"": true}
	for _, b := range d.blocks {
		urls[b.logURL] = true
	}
	for u := range urls {
		reserve = max(reserve, o.size(o.truncated(u)))
	}
	p.budget = o.limit - reserve
	p.start()
	for i := range d.blocks {
		if p.stopped {
			break
		}
		b := &d.blocks[i]
		switch b.kind {
		case blockOpen:
			p.stack = append(p.stack, frame{b: b})
			p.closing += o.size(b.close)
		case blockClose:
			top := p.stack[len(p.stack)-1]
			p.stack = p.stack[:len(p.stack)-1]
			p.closing -= o.size(top.b.close)
			if top.written {
				p.write(top.b.close)
			}
		case blockText:
			p.addText(b.text)
		case blockCode:
			p.addCode(b)
		}
	}
	if !p.stopped {
		p.closeAll()
		p.parts = append(p.parts, p.cur.String())
	}
	return p.parts
}

func (p *pager) start() {
	p.cur.Reset()
	p.used = 0
	p.content = false
	p.write(p.o.header(len(p.parts) + 1))
	for i := range p.stack {
		f := &p.stack[i]
		f.carried = f.carried || f.written // a container that had nothing in the last part starts afresh
		f.written = false
	}
}

func (p *pager) write(s string) {
	p.cur.WriteString(s)
	p.used += p.o.size(s)
}

// pending is the size of the opening texts that writing content now would bring along.
func (p *pager) pending() int {
	n := 0
	for _, f := range p.stack {
		if !f.written {
			n += p.o.size(f.opening())
		}
	}
	return n
}

func (f frame) opening() string {
	if f.carried {
		return f.b.reopen
	}
	return f.b.text
}

// room is how much content fits in the current part.
func (p *pager) room() int { return p.budget - p.used - p.pending() - p.closing }

func (p *pager) emit(s string) {
	for i := range p.stack {
		if !p.stack[i].written {
			p.write(p.stack[i].opening())
			p.stack[i].written = true
		}
	}
	p.write(s)
	p.content = true
}

// closeAll writes the close texts of the open containers written in this part, innermost first.
func (p *pager) closeAll() {
	for i := len(p.stack) - 1; i >= 0; i-- {
		if p.stack[i].written {
			p.write(p.stack[i].b.close)
		}
	}
}

// next ends the current part and starts another; false when maxParts is reached, after which the last part
// ends with the truncation notice and everything else is dropped.
func (p *pager) next() bool {
	p.closeAll()
	if p.o.maxParts > 0 && len(p.parts)+1 >= p.o.maxParts {
		p.write(p.o.truncated(p.logURL()))
		p.parts = append(p.parts, p.cur.String())
		p.stopped = true
		return false
	}
	p.write(p.o.continued)
	p.parts = append(p.parts, p.cur.String())
	p.start()
	return true
}

// logURL is the log of the innermost container that names one.
func (p *pager) logURL() string {
	for i := len(p.stack) - 1; i >= 0; i-- {
		if p.stack[i].b.logURL != "" {
			return p.stack[i].b.logURL
		}
	}
	return ""
}

// fit makes sure n more fits, moving to the next part if that helps. false: it cannot fit (stopped, or too big
// even for an empty part).
func (p *pager) fit(n int) bool {
	if n <= p.room() {
		return true
	}
	if p.content && !p.next() {
		return false
	}
	return n <= p.room()
}

func (p *pager) addText(s string) {
	if p.fit(p.o.size(s)) {
		p.emit(s)
		return
	}
	if !p.stopped {
		p.tooLong()
	}
}

// tooLong stands in for a block that does not fit even in an empty part. Only reachable with a limit near
// MinCommentLimit and very deep nesting: one-line inputs are capped far below it.
func (p *pager) tooLong() {
	if notice := "_(Too long to show here: see the " + link("full log", p.logURL()) + ".)_\n\n"; p.fit(p.o.size(notice)) {
		p.emit(notice)
	}
}

func (p *pager) addCode(b *block) {
	fence := codeFence(b.text)
	whole := fence + b.lang + "\n" + ensureNewline(b.text) + fence + "\n"
	if b.maxLines > 0 && strings.Count(whole, "\n") > b.maxLines+2 {
		whole = truncateCode(b, fence, int(^uint(0)>>1), p.o.size)
	}
	if p.fit(p.o.size(whole)) {
		p.emit(whole)
		return
	}
	if p.stopped {
		return
	}
	if cut := truncateCode(b, fence, p.room(), p.o.size); p.o.size(cut) <= p.room() {
		p.emit(cut)
	} else {
		p.tooLong()
	}
}

// codeFence is a backtick fence longer than any backtick run in content, so no line of it can close the block.
func codeFence(content string) string {
	longest, run := 0, 0
	for i := 0; i < len(content); i++ {
		if content[i] == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return strings.Repeat("`", max(3, longest+1))
}

func ensureNewline(s string) string {
	if s == "" || strings.HasSuffix(s, "\n") {
		return s
	}
	return s + "\n"
}

// truncateCode renders as much of a code block as fits in room, whole lines first, cut at a rune boundary
// when not even one line fits, followed (or, with keepTail, preceded) by a pointer to the full log.
func truncateCode(b *block, fence string, room int, size func(string) int) string {
	lines := strings.SplitAfter(ensureNewline(b.text), "\n")
	lines = lines[:len(lines)-1] // SplitAfter leaves an empty string after the final "\n"
	total := len(lines)
	// The notice is sized for the largest count it can show, so that the final one always fits.
	notice := func(shown int) string {
		where := "earlier"
		if !b.keepTail {
			where = "more"
		}
		return "> ✂️ Truncated: " + formatCount(total-shown) + " " + where + " " + plural(total-shown, "line") +
			" not shown. See the " + link("full log", b.logURL) + ".\n\n"
	}
	open, closeFence := fence+b.lang+"\n", fence+"\n"
	left := room - size(notice(0)) - size(open) - size(closeFence)
	var kept []string
	partial := ""
	for i := range lines {
		if b.maxLines > 0 && i == b.maxLines {
			break
		}
		line := lines[i]
		if b.keepTail {
			line = lines[total-1-i]
		}
		n := size(line)
		if n > left {
			if len(kept) == 0 && left > 1 { // not even one line: show what fits of it
				partial = cutToSize(strings.TrimSuffix(line, "\n"), left-1, size, b.keepTail) + "\n"
			}
			break
		}
		kept = append(kept, line)
		left -= n
	}
	shown := len(kept)
	if b.keepTail {
		for i, j := 0, len(kept)-1; i < j; i, j = i+1, j-1 {
			kept[i], kept[j] = kept[j], kept[i]
		}
	}
	body := strings.Join(kept, "") + partial
	if body == "" {
		return notice(0)
	}
	if b.keepTail {
		return notice(shown) + open + body + closeFence
	}
	return open + body + closeFence + notice(shown)
}

// cutToSize returns the longest prefix (or suffix, fromEnd) of s within n, cut between runes.
func cutToSize(s string, n int, size func(string) int, fromEnd bool) string {
	used := 0
	if !fromEnd {
		for i := 0; i < len(s); {
			_, runeLen := utf8.DecodeRuneInString(s[i:])
			w := size(s[i : i+runeLen])
			if used+w > n {
				return s[:i]
			}
			used += w
			i += runeLen
		}
		return s
	}
	for i := len(s); i > 0; {
		_, w := utf8.DecodeLastRuneInString(s[:i])
		if used+size(s[i-w:i]) > n {
			return s[i:]
		}
		used += size(s[i-w : i])
		i -= w
	}
	return s
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// formatCount writes n with thousands separators: 12,345.
func formatCount(n int) string {
	s := strconv.Itoa(n)
	if n < 0 || len(s) <= 3 {
		return s
	}
	var b strings.Builder
	pre := len(s) % 3
	if pre > 0 {
		b.WriteString(s[:pre])
	}
	for i := pre; i < len(s); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s[i : i+3])
	}
	return b.String()
}

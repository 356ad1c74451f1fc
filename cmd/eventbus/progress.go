package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progress draws a one-line status that rewrites itself on a terminal; on anything
// else (a pipe, a file, a test) it prints nothing, so that output stays clean for
// scripts and only the final summary is printed.
type progress struct {
	w    io.Writer
	tty  bool
	last time.Time
	n    int // length of the line drawn
}

// newProgress returns a progress line on w, drawn only when w is a terminal.
func newProgress(w io.Writer) *progress {
	return &progress{w: w, tty: isTerminal(w)}
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// draw shows line, at most every 100ms unless force is set.
func (p *progress) draw(line string, force bool) {
	if !p.tty || (!force && time.Since(p.last) < 100*time.Millisecond) {
		return
	}
	p.last = time.Now()
	pad := ""
	if len(line) < p.n {
		pad = strings.Repeat(" ", p.n-len(line))
	}
	fmt.Fprint(p.w, "\r"+line+pad)
	p.n = len(line)
}

// bar draws a progress bar of done out of total with a label.
func (p *progress) bar(done, total int, label string, force bool) {
	if !p.tty {
		return
	}
	const width = 30
	filled := width
	if total > 0 {
		filled = done * width / total
	}
	p.draw(fmt.Sprintf("[%s%s] %d/%d %s", strings.Repeat("#", filled), strings.Repeat(".", width-filled), done, total, label), force)
}

// clear erases the line so that the summary starts on a clean line.
func (p *progress) clear() {
	if p.tty && p.n > 0 {
		fmt.Fprint(p.w, "\r"+strings.Repeat(" ", p.n)+"\r")
		p.n = 0
	}
}

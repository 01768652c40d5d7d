package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/openbyok/byok/client"
)

// barWidth is the width of the progress bar in cells.
const barWidth = 30

// progress draws a job's progress: a bar redrawn in place on a terminal,
// or a plain line per whole percent otherwise (logs, pipes, CI).
type progress struct {
	w    io.Writer
	tty  bool
	last int // the last percentage printed, -1 for none
}

func newProgress(w io.Writer) *progress {
	return &progress{w: w, tty: isTerminal(w), last: -1}
}

// isTerminal reports whether w is a character device, such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// percent is the job's progress from 0 to 100; a finished job is at 100
// and an unfinished one below it, whatever its estimate of the total.
func percent(j client.Job) int {
	if j.State == client.JobDone {
		return 100
	}
	if j.Total <= 0 {
		return 0
	}
	return min(99, int(j.Done*100/j.Total))
}

// update shows j.
func (p *progress) update(j client.Job) {
	pc := percent(j)
	if p.tty {
		n := pc * barWidth / 100
		fmt.Fprintf(p.w, "\r%s [%s%s] %3d%%  %d/%d  %s", j.Kind, strings.Repeat("█", n), strings.Repeat("·", barWidth-n), pc, j.Done, j.Total, j.State)
		if j.Finished() {
			fmt.Fprintln(p.w)
		}
		return
	}
	if pc != p.last || j.Finished() {
		fmt.Fprintf(p.w, "%s %s: %d%% (%d/%d) %s\n", j.Kind, j.ID, pc, j.Done, j.Total, j.State)
	}
	p.last = pc
}

// followJob polls j every poll until it finishes, drawing its progress on
// w, and returns the finished job; a failed job is an error.
func followJob(ctx context.Context, c *client.Client, tenant string, j client.Job, poll time.Duration, w io.Writer) (client.Job, error) {
	p := newProgress(w)
	p.update(j)
	if j.Finished() {
		return j, jobError(j)
	}
	var err error
	j, err = c.WaitJob(ctx, tenant, j.ID, poll, p.update)
	if err != nil {
		return j, apiError(err)
	}
	return j, jobError(j)
}

// jobError is the error of a job that failed, or nil.
func jobError(j client.Job) error {
	if j.State != client.JobFailed {
		return nil
	}
	return fmt.Errorf("%s job %s failed after %d attempt(s): %s; fix the cause and start it again", j.Kind, j.ID, j.Attempts, orDash(j.Error))
}

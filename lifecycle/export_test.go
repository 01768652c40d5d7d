package lifecycle

// SetJobPage sets how many unfinished jobs a Tick lists at a time and
// returns the function that restores it.
func SetJobPage(n int) (restore func()) {
	old := jobPage
	jobPage = n
	return func() { jobPage = old }
}

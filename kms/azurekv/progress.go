package azurekv

import "context"

// TestConfigurationProgress runs [TestConfiguration] and calls progress
// with each check as soon as it is decided, in report order, from the
// calling goroutine, before the next check starts. The checks progress
// sees are exactly those of the returned report, skipped ones included.
// A nil progress makes it TestConfiguration. progress must not block for
// long: the vault calls of the next check wait for it.
func TestConfigurationProgress(ctx context.Context, cfg Config, progress func(Check)) Report {
	t := &tester{cfg: cfg, progress: progress}
	t.run(ctx)
	return t.report
}

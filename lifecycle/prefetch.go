package lifecycle

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
)

// PrefetchStats says what [Service.Prefetch] did.
type PrefetchStats struct {
	Tenants int           // active and rotating BYOK tenants listed
	Warm    int           // whose customer-managed key is now cached
	Failed  int           // whose key could not be loaded (revoked, vault down, …)
	Took    time.Duration // from the listing to the last load
}

// Prefetch warms this replica's keyring: it loads the current
// customer-managed tenant key of every active or rotating BYOK tenant
// (a full check: customer share and platform share unwrapped, the key
// derived), at most Config.PrefetchWorkers at once, each vault's calls
// inside its budget and Retry-After hold (kms/azurekv). [Service.Run]
// calls it in the background at start: the replica is ready as soon as
// the store and the platform key answer, and serves requests meanwhile —
// a request for a tenant not warm yet loads the key itself, sharing the
// load (the keyring's singleflight) if the warm-up is on it.
//
// A key that fails to load is counted and left to the keyring's rules (a
// revocation is recorded as any check's); the error returned is the
// listing's or ctx's, not a tenant's.
func (s *Service) Prefetch(ctx context.Context) (PrefetchStats, error) {
	start := time.Now()
	recs, err := s.records(ctx, StateActive, StateRotating)
	if err != nil {
		return PrefetchStats{}, err
	}
	var warm, failed atomic.Int64
	var logged sync.Once
	ctx = withPurpose(ctx, audit.PurposeBackgroundCheck, prefetchActor)
	parallel(ctx, len(recs), orDefault(s.cfg.PrefetchWorkers, DefaultPrefetchWorkers), func(i int) {
		err := s.kr.Warm(ctx, recs[i].Tenant, byok.CustomerManaged)
		switch {
		case err == nil:
			warm.Add(1)
		case errors.Is(err, byok.ErrNotFound):
		default:
			failed.Add(1)
			if ctx.Err() == nil {
				logged.Do(func() {
					s.cfg.Logger.Warn("lifecycle prefetch: a tenant key did not load (more may follow; the keyring logs each)", "tenant", recs[i].Tenant, "error", err)
				})
			}
		}
	})
	st := PrefetchStats{Tenants: len(recs), Warm: int(warm.Load()), Failed: int(failed.Load()), Took: time.Since(start)}
	s.cfg.Logger.Info("lifecycle prefetch: tenant keys warm", "tenants", st.Tenants, "warm", st.Warm, "failed", st.Failed, "took", st.Took)
	return st, ctx.Err()
}

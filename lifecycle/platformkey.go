package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/kms"
	"github.com/openbyok/byok/store"
)

// PlatformRekey is one run of the platform re-key: it moves every share
// and sealed credential wrapped under an older version of the platform
// root key onto Target, its current version. Tenant keys do not change
// (the same share is wrapped again), so no DEK is touched and nothing is
// forgotten from any cache. A run is idempotent and resumes by itself:
// each share is replaced only if it still sits under the version it was
// read under, so a crashed or concurrent run leaves nothing half-done,
// and the next run finds what is left.
type PlatformRekey struct {
	ID     string
	Target string // the versioned key id shares move to
	State  JobState
	// Total counts the shares and sealed credentials under older
	// versions when the run started; Done those moved; Failed those that
	// could not be (Error says why, for the first one).
	Total, Done, Failed int
	Error               string
	Actor               audit.Actor
	Started, Finished   time.Time
}

// PlatformVersion is one version of the platform root key in the
// inventory: how many shares and sealed credentials depend on it.
type PlatformVersion struct {
	KeyID   string
	Shares  int
	Current bool
	// SafeToRetire: nothing depends on it and it is not current.
	SafeToRetire bool
}

// VersionLister is implemented by platform key providers that can list
// every version of a key, so that versions nothing depends on any more
// show in the inventory as safe to retire.
type VersionLister interface {
	// Versions returns the versioned ids of every version of keyID.
	Versions(ctx context.Context, keyID string) ([]string, error)
}

// platformRekeys keeps this replica's runs of the platform re-key.
type platformRekeys struct {
	mu      sync.Mutex
	runs    map[string]*PlatformRekey
	running string // the id of the run in progress, "" if none
}

// rekeyWorkers is how many tenants a platform re-key handles at once: the
// platform key's provider paces its own calls (Key Vault's budget).
const rekeyWorkers = 16

// PlatformInventory lists the versions of the platform root key with the
// shares and sealed credentials under each, the current one flagged
// Current. Versions listed by the provider (see [VersionLister]) that
// nothing depends on are included, safe to retire; a listing that fails
// is logged and left out.
func (s *Service) PlatformInventory(ctx context.Context) ([]PlatformVersion, error) {
	info, err := s.cfg.PlatformKMS.Describe(ctx, s.cfg.PlatformKeyID)
	if err != nil {
		return nil, fmt.Errorf("lifecycle: describing the platform root key: %w", err)
	}
	counts, err := s.platformCounts(ctx)
	if err != nil {
		return nil, err
	}
	counts[info.KeyID] += 0
	if l, ok := s.cfg.PlatformKMS.(VersionLister); ok {
		vs, err := l.Versions(ctx, s.cfg.PlatformKeyID)
		if err != nil {
			// The counts stand without the listing: only versions that
			// hold nothing any more are missing from them.
			s.cfg.Logger.WarnContext(ctx, "listing the versions of the platform root key failed; the inventory shows only versions that hold shares", "error", err)
		}
		for _, v := range vs {
			counts[v] += 0
		}
	}
	out := make([]PlatformVersion, 0, len(counts))
	for id, n := range counts {
		cur := id == info.KeyID
		out = append(out, PlatformVersion{KeyID: id, Shares: n, Current: cur, SafeToRetire: !cur && n == 0})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].KeyID < out[j].KeyID })
	return out, nil
}

// platformCounts counts shares and sealed credentials under each version
// of the platform root key.
func (s *Service) platformCounts(ctx context.Context) (map[string]int, error) {
	shares, err := s.cfg.Store.ShareInventory(ctx)
	if err != nil {
		return nil, fmt.Errorf("lifecycle: counting shares: %w", err)
	}
	counts := map[string]int{}
	for _, c := range shares {
		if s.isPlatformKeyID(c.KeyID) {
			counts[c.KeyID] += c.Shares
		}
	}
	err = s.eachKeyRecord(ctx, func(r Record) error {
		if r.SealedSecret.KeyID != "" && s.isPlatformKeyID(r.SealedSecret.KeyID) {
			counts[r.SealedSecret.KeyID]++
		}
		return nil
	})
	return counts, err
}

// eachKeyRecord calls f with every lifecycle record, in pages.
func (s *Service) eachKeyRecord(ctx context.Context, f func(Record) error) error {
	after := ""
	for {
		recs, err := s.cfg.Store.ListKeyRecords(ctx, after, 500)
		if err != nil {
			return fmt.Errorf("lifecycle: listing key records: %w", err)
		}
		for _, r := range recs {
			if err := f(r); err != nil {
				return err
			}
		}
		if len(recs) < 500 {
			return nil
		}
		after = recs[len(recs)-1].Tenant
	}
}

// StartPlatformRekey starts a platform re-key in the background of this
// replica and returns its first status. While a run is in progress here,
// it returns that run instead of starting another.
func (s *Service) StartPlatformRekey(ctx context.Context, actor audit.Actor) (PlatformRekey, error) {
	s.rekeys.mu.Lock()
	if s.rekeys.running != "" {
		r := *s.rekeys.runs[s.rekeys.running]
		s.rekeys.mu.Unlock()
		return r, nil
	}
	run, err := s.newPlatformRekey(ctx, actor)
	if err != nil {
		s.rekeys.mu.Unlock()
		return PlatformRekey{}, err
	}
	if s.rekeys.runs == nil {
		s.rekeys.runs = map[string]*PlatformRekey{}
	}
	s.rekeys.runs[run.ID] = &run
	s.rekeys.running = run.ID
	s.rekeys.mu.Unlock()
	go s.RekeyPlatform(context.WithoutCancel(ctx), run, nil)
	return run, nil
}

// PlatformRekeyStatus returns a run of this replica by id, or the latest
// one for id "". It fails with an error wrapping byok.ErrNotFound when
// this replica has no such run.
func (s *Service) PlatformRekeyStatus(id string) (PlatformRekey, error) {
	s.rekeys.mu.Lock()
	defer s.rekeys.mu.Unlock()
	if id == "" {
		var last *PlatformRekey
		for _, r := range s.rekeys.runs {
			if last == nil || r.Started.After(last.Started) || (r.Started.Equal(last.Started) && r.ID > last.ID) {
				last = r
			}
		}
		if last == nil {
			return PlatformRekey{}, fmt.Errorf("lifecycle: no platform re-key has run on this replica: %w", byok.ErrNotFound)
		}
		return *last, nil
	}
	r, ok := s.rekeys.runs[id]
	if !ok {
		return PlatformRekey{}, fmt.Errorf("lifecycle: platform re-key %q is not known to this replica (runs are kept by the replica that ran them; the inventory shows what is left): %w", id, byok.ErrNotFound)
	}
	return *r, nil
}

// newPlatformRekey describes the platform root key and counts what the run
// must move.
func (s *Service) newPlatformRekey(ctx context.Context, actor audit.Actor) (PlatformRekey, error) {
	info, err := s.cfg.PlatformKMS.Describe(ctx, s.cfg.PlatformKeyID)
	if err != nil {
		return PlatformRekey{}, fmt.Errorf("lifecycle: describing the platform root key: %w", err)
	}
	counts, err := s.platformCounts(ctx)
	if err != nil {
		return PlatformRekey{}, err
	}
	total := 0
	for id, n := range counts {
		if id != info.KeyID {
			total += n
		}
	}
	return PlatformRekey{ID: newJobID(), Target: info.KeyID, State: JobRunning, Total: total, Actor: actor, Started: s.cfg.Now()}, nil
}

// RekeyPlatform runs a platform re-key to its end and returns how it
// ended; progress, if not nil, is called after every tenant. run comes
// from [Service.StartPlatformRekey]; a zero run starts a new one. The run
// is audited when it starts and ends.
func (s *Service) RekeyPlatform(ctx context.Context, run PlatformRekey, progress func(PlatformRekey)) (PlatformRekey, error) {
	if run.ID == "" {
		var err error
		if run, err = s.newPlatformRekey(ctx, run.Actor); err != nil {
			return run, err
		}
	}
	s.record(ctx, audit.Event{Actor: run.Actor, Action: "platform-key.rekey.start", Target: run.Target, Outcome: audit.Success,
		Reason: fmt.Sprintf("%d shares and sealed credentials to move", run.Total)})
	var mu sync.Mutex
	update := func(moved, failed int, err error) {
		mu.Lock()
		defer mu.Unlock()
		run.Done += moved
		run.Failed += failed
		if err != nil && run.Error == "" {
			run.Error = err.Error()
		}
		s.publish(run)
		if progress != nil {
			progress(run)
		}
	}
	work := make(chan string)
	var wg sync.WaitGroup
	for range rekeyWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for tenant := range work {
				moved, failed, err := s.rekeyTenantShares(ctx, tenant, run.Target)
				update(moved, failed, err)
			}
		}()
	}
	listErr := s.eachTenant(ctx, func(t string) { work <- t })
	close(work)
	wg.Wait()
	if listErr == nil {
		listErr = s.eachKeyRecord(ctx, func(r Record) error {
			if r.SealedSecret.KeyID == "" || !s.isPlatformKeyID(r.SealedSecret.KeyID) || r.SealedSecret.KeyID == run.Target {
				return nil
			}
			err := s.resealSecret(ctx, r.Tenant, run.Target)
			if err != nil {
				update(0, 1, err)
			} else {
				update(1, 0, nil)
			}
			return nil
		})
	}
	run.State, run.Finished = JobDone, s.cfg.Now()
	outcome, reason := audit.Success, fmt.Sprintf("%d moved of %d", run.Done, run.Total)
	var err error
	switch {
	case listErr != nil:
		err = listErr
	case run.Failed > 0:
		err = fmt.Errorf("lifecycle: platform re-key: %d shares or credentials could not be moved, the first because: %s; run it again once that is fixed", run.Failed, run.Error)
	}
	if err != nil {
		run.State, run.Error = JobFailed, err.Error()
		outcome, reason = audit.Failure, err.Error()
	}
	s.publish(run)
	s.record(ctx, audit.Event{Actor: run.Actor, Action: "platform-key.rekey.finish", Target: run.Target, Outcome: outcome, Reason: reason})
	return run, err
}

// publish stores the state of a run for PlatformRekeyStatus.
func (s *Service) publish(run PlatformRekey) {
	s.rekeys.mu.Lock()
	defer s.rekeys.mu.Unlock()
	if s.rekeys.runs == nil {
		s.rekeys.runs = map[string]*PlatformRekey{}
	}
	s.rekeys.runs[run.ID] = &run
	if run.State != JobRunning && s.rekeys.running == run.ID {
		s.rekeys.running = ""
	}
}

// eachTenant calls f with every tenant id, in pages.
func (s *Service) eachTenant(ctx context.Context, f func(string)) error {
	after := ""
	for {
		ts, err := s.cfg.Store.ListTenants(ctx, after, 1000)
		if err != nil {
			return fmt.Errorf("lifecycle: listing tenants: %w", err)
		}
		for _, t := range ts {
			f(t.ID)
		}
		if len(ts) < 1000 {
			return nil
		}
		after = ts[len(ts)-1].ID
	}
}

// rekeyTenantShares moves the shares of a tenant's keys that sit under an
// older version of the platform root key onto target.
func (s *Service) rekeyTenantShares(ctx context.Context, tenant, target string) (moved, failed int, firstErr error) {
	keys, err := s.cfg.Store.TenantKeys(ctx, tenant)
	if err != nil {
		return 0, 1, fmt.Errorf("reading the keys of tenant %q: %w", tenant, err)
	}
	fail := func(err error) {
		failed++
		if firstErr == nil {
			firstErr = err
		}
	}
	for _, k := range keys {
		for _, sh := range []struct {
			which   string
			w       kms.Wrapped
			replace func(ctx context.Context, tenant string, kind byok.KeyKind, epoch uint32, oldKeyID string, w kms.Wrapped) error
		}{
			{"customer", k.CustomerShare, s.cfg.Store.ReplaceShare},
			{"platform", k.PlatformShare, s.cfg.Store.ReplacePlatformShare},
		} {
			if !s.isPlatformKeyID(sh.w.KeyID) || sh.w.KeyID == target {
				continue
			}
			if err := s.rewrapShare(ctx, sh.w, target, func(w kms.Wrapped) error {
				return sh.replace(ctx, tenant, k.Kind, k.Epoch, sh.w.KeyID, w)
			}); err != nil {
				fail(fmt.Errorf("the %s share of tenant %q (%s, epoch %d): %w", sh.which, tenant, k.Kind, k.Epoch, err))
				continue
			}
			moved++
		}
	}
	return moved, failed, firstErr
}

// rewrapShare unwraps w and wraps the same bytes under target, then
// stores the result with put. A put that finds the share already moved
// by another run (store.ErrConflict) counts as done.
func (s *Service) rewrapShare(ctx context.Context, w kms.Wrapped, target string, put func(kms.Wrapped) error) error {
	b, err := s.cfg.PlatformKMS.Unwrap(ctx, w)
	if err != nil {
		return err
	}
	defer clear(b)
	nw, err := s.cfg.PlatformKMS.Wrap(ctx, target, b)
	if err != nil {
		return err
	}
	if err := put(nw); err != nil && !errors.Is(err, store.ErrConflict) {
		return err
	}
	return nil
}

// resealSecret seals a tenant's credential again under target, retrying
// when the record changed meanwhile.
func (s *Service) resealSecret(ctx context.Context, tenant, target string) error {
	for range 3 {
		r, err := s.cfg.Store.KeyRecord(ctx, tenant)
		if err != nil {
			return fmt.Errorf("reading the key record of tenant %q: %w", tenant, err)
		}
		if r.SealedSecret.KeyID == "" || !s.isPlatformKeyID(r.SealedSecret.KeyID) || r.SealedSecret.KeyID == target {
			return nil
		}
		b, err := s.openSealed(ctx, tenant, r.SealedSecret)
		if err != nil {
			return fmt.Errorf("the credential of tenant %q: %w", tenant, err)
		}
		sec := NewSecret(string(b))
		clear(b)
		nw, err := s.sealUnder(ctx, tenant, target, sec)
		if err != nil {
			return err
		}
		r.SealedSecret = nw
		r.Version++
		r.Updated = s.cfg.Now()
		err = s.cfg.Store.PutKeyRecord(ctx, r)
		if !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
	return fmt.Errorf("the key record of tenant %q kept changing; run the re-key again", tenant)
}

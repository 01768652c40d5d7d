package lifecycle

import (
	"context"
	"errors"
	"time"

	"github.com/openbyok/byok"
)

// drainEvents records the keyring's revocations, outages and
// restorations of customer keys in the tenants' timelines.
func (s *Service) drainEvents(ctx context.Context) error {
	s.mon.drain.Lock()
	defer s.mon.drain.Unlock()
	s.mu.Lock()
	evs := s.pending
	s.pending = nil
	s.mu.Unlock()
	var errs []error
	for _, e := range evs {
		if e.Kind != byok.CustomerManaged {
			continue
		}
		var kind HealthEventKind
		switch e.Type {
		case byok.EventRevoked:
			kind = HealthRevoked
		case byok.EventUnavailable:
			kind = HealthUnavailable
		case byok.EventRestored:
			kind = HealthRestored
		default:
			continue
		}
		last, err := s.lastHealthKind(ctx, e.Tenant)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if kind == last || kind == HealthRestored && last == "" {
			continue // a repeat, or a recovery from a mere degradation
		}
		he := HealthEvent{Tenant: e.Tenant, Kind: kind, Reason: e.Reason, DetectedAt: e.At, EnforcedAt: e.At, Replica: s.cfg.ReplicaID}
		if err := s.cfg.Store.AddHealthEvent(ctx, he); err != nil {
			errs = append(errs, err)
			continue
		}
		s.mu.Lock()
		s.lastKind[e.Tenant] = kind
		s.mu.Unlock()
		s.notify(ctx, e.Tenant, "key."+string(kind), map[string]string{
			"reason": string(e.Reason), "detected_at": e.At.UTC().Format(time.RFC3339Nano),
			"enforced_at": e.At.UTC().Format(time.RFC3339Nano), "replica": s.cfg.ReplicaID})
	}
	return errors.Join(errs...)
}

// lastHealthKind returns the kind of the tenant's latest timeline entry,
// "" if it has none.
func (s *Service) lastHealthKind(ctx context.Context, tenant string) (HealthEventKind, error) {
	s.mu.Lock()
	k, ok := s.lastKind[tenant]
	s.mu.Unlock()
	if ok {
		return k, nil
	}
	es, err := s.cfg.Store.HealthEvents(ctx, tenant, 1)
	if err != nil {
		return "", err
	}
	if len(es) > 0 {
		k = es[0].Kind
	}
	s.mu.Lock()
	s.lastKind[tenant] = k
	s.mu.Unlock()
	return k, nil
}

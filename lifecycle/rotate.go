package lifecycle

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/openbyok/byok"
	"github.com/openbyok/byok/audit"
	"github.com/openbyok/byok/kms"
)

// Rotate re-wraps the customer share of the tenant's current
// customer-managed key under a new version of its key or under another
// key (see [RotateRequest]): at most one unwrap and one wrap, committed
// atomically with the new settings. It runs to the end before returning;
// the job it returns is finished. Allowed when active.
func (s *Service) Rotate(ctx context.Context, actor audit.Actor, tenant string, req RotateRequest) (Job, error) {
	rec, err := s.load(ctx, tenant)
	if err != nil {
		return Job{}, err
	}
	if err := s.allowed(rec, OpRotate); err != nil {
		s.refused(ctx, actor, tenant, OpRotate.action(), err)
		return Job{}, err
	}
	target, err := s.rotationTarget(ctx, actor, rec, req)
	if err != nil {
		return Job{}, err
	}
	return s.rotate(ctx, actor, rec, target)
}

// rotationTarget returns the record as it will be after the rotation req
// asks for, with the settings (secret included) to wrap under.
func (s *Service) rotationTarget(ctx context.Context, actor audit.Actor, rec Record, req RotateRequest) (KeySettings, error) {
	cur, err := s.unseal(ctx, rec)
	if err != nil {
		return KeySettings{}, err
	}
	switch {
	case req.KeyID != "" && req.Settings != nil:
		return KeySettings{}, &FieldError{Field: "key_id", Reason: "give either a new version of the key or new settings, not both"}
	case req.KeyID != "":
		conn, err := s.Connector(cur.Provider)
		if err != nil {
			return KeySettings{}, err
		}
		base, version := conn.SplitKeyID(req.KeyID)
		curBase, _ := conn.SplitKeyID(cur.KeyID)
		if version == "" {
			return KeySettings{}, &FieldError{Field: "key_id", Reason: fmt.Sprintf("%q names no version; give a versioned id of the same key, or new settings to move to another key", req.KeyID)}
		}
		if !strings.EqualFold(base, curBase) {
			return KeySettings{}, &FieldError{Field: "key_id", Reason: fmt.Sprintf("%q is not a version of the configured key %q; to move to another key, rotate with new settings", req.KeyID, curBase)}
		}
		cur.KeyID = req.KeyID
		return cur, nil
	case req.Settings != nil:
		next := *req.Settings
		next.Tenant = rec.Tenant
		var saved *KeySettings
		if cur.Secret.IsSet() {
			saved = &cur
		}
		next, _, keep, err := s.checkSettings(ctx, next, saved)
		if err != nil {
			return KeySettings{}, err
		}
		if keep {
			next.Secret = cur.Secret
		}
		r, err := s.test(ctx, actor, rec.Tenant, next)
		if err != nil {
			return KeySettings{}, err
		}
		if !r.Passed() {
			return KeySettings{}, &FieldError{Field: "settings", Reason: "Test configuration of the new key failed (" + failedChecks(r) + "); fix it and rotate again"}
		}
		return next, nil
	}
	return cur, nil
}

// rotate re-wraps the customer share of every current customer-managed
// epoch (the one in use, in practice) under settings, and commits each
// with the new record.
func (s *Service) rotate(ctx context.Context, actor audit.Actor, rec Record, settings KeySettings) (Job, error) {
	now := s.cfg.Now()
	j := JobRecord{Job: Job{ID: newJobID(), Tenant: rec.Tenant, Kind: JobRotate, State: JobRunning, Actor: actor, Created: now, Updated: now}}
	prevState := rec.State
	rec.State = StateRotating
	if err := s.save(ctx, &rec); err != nil {
		return Job{}, err
	}
	err := s.rewrapShares(ctx, actor, &rec, settings, &j)
	rec.State = prevState
	if serr := s.save(ctx, &rec); serr != nil && err == nil {
		err = serr
	}
	j.Updated = s.cfg.Now()
	j.State = JobDone
	if err != nil {
		j.State, j.Error, j.Attempts = JobFailed, err.Error(), 1
	}
	if perr := s.cfg.Store.PutJob(ctx, j); perr != nil && err == nil {
		err = perr
	}
	s.forget(rec.Tenant)
	after, _ := json.Marshal(map[string]any{"key_id": rec.Settings.KeyID, "shares": j.Done})
	s.audit(ctx, actor, rec.Tenant, "key.rotate", settings.KeyID, nil, after, err)
	if err == nil {
		s.notify(ctx, rec.Tenant, "key.rotated", map[string]string{"key_id": rec.Settings.KeyID})
	}
	return j.Job, err
}

// rewrapShares re-wraps the customer shares of rec's live epochs under
// settings: one unwrap under the recorded version with the current
// provider and one wrap with the new one per share.
func (s *Service) rewrapShares(ctx context.Context, actor audit.Actor, rec *Record, settings KeySettings, j *JobRecord) error {
	live, err := s.liveEpochs(ctx, rec.Tenant)
	if err != nil {
		return err
	}
	j.Total = int64(len(live))
	oldP, err := s.provider(ctx, *rec)
	if err != nil {
		return err
	}
	next := *rec
	next.Settings, next.SettingsHash = settings.stored(), settings.Hash()
	if settings.Secret.IsSet() && settings.Hash() != rec.SettingsHash {
		if next.SealedSecret, err = s.seal(ctx, rec.Tenant, settings.Secret); err != nil {
			return err
		}
	} else if !settings.Secret.IsSet() {
		next.SealedSecret = kms.Wrapped{}
	}
	newP, err := s.provider(ctx, next)
	if err != nil {
		return err
	}
	vctx := withPurpose(ctx, audit.PurposeRotationJob, actor)
	for _, tk := range live {
		c, err := oldP.Unwrap(bound(vctx, tk.Epoch), tk.CustomerShare)
		if err != nil {
			return fmt.Errorf("lifecycle: unwrapping the customer share of tenant %q under %s: %w", rec.Tenant, tk.CustomerShare.KeyID, err)
		}
		w, err := newP.Wrap(bound(vctx, tk.Epoch), settings.KeyID, c)
		clear(c)
		if err != nil {
			return fmt.Errorf("lifecycle: wrapping the customer share of tenant %q under %s: %w", rec.Tenant, settings.KeyID, err)
		}
		if w.KeyID == tk.CustomerShare.KeyID && next.SettingsHash == rec.SettingsHash {
			j.Done++
			continue // already under that version
		}
		next.Version = rec.Version + 1
		next.Updated = s.cfg.Now()
		next.Versions = addVersion(next.Versions, w.KeyID)
		if err := s.cfg.Store.CommitRotation(ctx, next, byok.CustomerManaged, tk.Epoch, tk.CustomerShare.KeyID, w); err != nil {
			return fmt.Errorf("lifecycle: committing the rotation of tenant %q: %w", rec.Tenant, err)
		}
		*rec = next
		j.Done++
	}
	*rec = next
	return s.save(ctx, rec)
}

func addVersion(vs []string, v string) []string {
	if slices.Contains(vs, v) {
		return vs
	}
	return append(slices.Clone(vs), v)
}

// liveEpochs returns the customer-managed tenant keys whose customer share
// is under a customer key and that data depends on: the current epoch, and
// older ones that still wrap DEKs or may again. While a job of the tenant
// is unfinished, every older epoch counts: its batches may not be durable
// yet (see [Store]), and a power loss would put DEKs
// back under an epoch they had left.
func (s *Service) liveEpochs(ctx context.Context, tenant string) ([]byok.TenantKeyRecord, error) {
	keys, err := s.cfg.Store.TenantKeys(ctx, tenant)
	if err != nil {
		return nil, fmt.Errorf("lifecycle: reading the keys of tenant %q: %w", tenant, err)
	}
	running, err := s.cfg.Store.ListJobs(ctx, tenant, true, 1)
	if err != nil {
		return nil, fmt.Errorf("lifecycle: reading the jobs of tenant %q: %w", tenant, err)
	}
	var cm []byok.TenantKeyRecord
	for _, k := range keys {
		if k.Kind == byok.CustomerManaged {
			cm = append(cm, k)
		}
	}
	var live []byok.TenantKeyRecord
	for i, k := range cm {
		if s.isPlatformKeyID(k.CustomerShare.KeyID) {
			continue
		}
		if i < len(cm)-1 && len(running) == 0 {
			n, err := s.cfg.Store.CountDEKs(ctx, tenant, byok.CustomerManaged, k.Epoch+1, "")
			if err != nil {
				return nil, err
			}
			prev, err := s.cfg.Store.CountDEKs(ctx, tenant, byok.CustomerManaged, k.Epoch, "")
			if err != nil {
				return nil, err
			}
			if n-prev == 0 {
				continue
			}
		}
		live = append(live, k)
	}
	return live, nil
}

// namesPlatformKey reports whether a customer key id names the platform
// root key or a version of it, as isPlatformKeyID does but ignoring case
// and a trailing slash, which name the same Azure key.
func (s *Service) namesPlatformKey(id string) bool {
	p := strings.ToLower(s.cfg.PlatformKeyID)
	id = strings.ToLower(strings.TrimSuffix(id, "/"))
	return p != "" && (id == p || strings.HasPrefix(id, p+"/"))
}

// isPlatformKeyID mirrors the keyring's routing: the platform key id or a
// version of it.
func (s *Service) isPlatformKeyID(id string) bool {
	p := s.cfg.PlatformKeyID
	return id == p || strings.HasPrefix(id, p+"/")
}

package vault

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

var isoDurationRE = regexp.MustCompile(`^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?$`)

// parseISODuration reads the ISO 8601 durations rotation policies use
// (P90D, P2Y, P1Y6M, P2W), counting a year as 365 days and a month as 30.
func parseISODuration(s string) (time.Duration, error) {
	m := isoDurationRE.FindStringSubmatch(strings.ToUpper(s))
	if m == nil || s == "P" || len(s) < 3 {
		return 0, fmt.Errorf("%q is not an ISO 8601 duration such as P90D or P2Y", s)
	}
	days := 0
	for i, mult := range []int{365, 30, 7, 1} {
		if m[i+1] == "" {
			continue
		}
		n, err := strconv.Atoi(m[i+1])
		if err != nil || n > 100*365 {
			return 0, fmt.Errorf("%q is too long a duration", s)
		}
		days += n * mult
	}
	if days > 100*365 {
		return 0, fmt.Errorf("%q is too long a duration", s)
	}
	return time.Duration(days) * 24 * time.Hour, nil
}

// validate checks a rotation policy as Key Vault does: expiryTime of at
// least 28 days, one trigger per action, triggers of at least 7 days, a
// timeBeforeExpiry trigger only with an expiryTime.
func (p *rotationPolicy) validate() *apiError {
	var expiry time.Duration
	if p.ExpiryTime != "" {
		d, err := parseISODuration(p.ExpiryTime)
		if err != nil {
			return badParameter("Invalid expiryTime: %v", err)
		}
		if d < 28*24*time.Hour {
			return badParameter("The expiryTime %s of the rotation policy must be at least 28 days (P28D).", p.ExpiryTime)
		}
		expiry = d
	}
	for _, a := range p.LifetimeActions {
		if !strings.EqualFold(a.Action, "Rotate") && !strings.EqualFold(a.Action, "Notify") {
			return badParameter("Invalid lifetime action type %q; use Rotate or Notify.", a.Action)
		}
		if (a.TimeAfterCreate == "") == (a.TimeBeforeExpiry == "") {
			return badParameter("Each lifetime action needs exactly one trigger: timeAfterCreate or timeBeforeExpiry.")
		}
		trig := a.TimeAfterCreate + a.TimeBeforeExpiry
		d, err := parseISODuration(trig)
		if err != nil {
			return badParameter("Invalid lifetime action trigger: %v", err)
		}
		if d < 7*24*time.Hour {
			return badParameter("The lifetime action trigger %s must be at least 7 days (P7D).", trig)
		}
		if a.TimeBeforeExpiry != "" && expiry == 0 {
			return badParameter("A timeBeforeExpiry trigger needs the policy's expiryTime.")
		}
		if a.TimeBeforeExpiry != "" && d >= expiry {
			return badParameter("The timeBeforeExpiry trigger %s must be shorter than the expiryTime %s.", trig, p.ExpiryTime)
		}
	}
	return nil
}

// rotationSeed is what a rotated version inherits from the current one.
type rotationSeed struct {
	kty, curve string
	size       int
	ops        []string
	tags       map[string]string
	expiry     time.Duration // the policy's expiryTime, 0 if none
}

// seed captures what a new version of k inherits; the caller holds s.mu.
func (k *keyState) seed() rotationSeed {
	cur := k.latest()
	sd := rotationSeed{kty: cur.kty, ops: cur.ops, tags: cur.tags}
	if cur.ec != nil {
		sd.curve = curveName(cur.ec.Curve)
	} else { // RSA modulus or AES key size
		sd.size = cur.size()
	}
	if k.policy != nil && k.policy.ExpiryTime != "" {
		sd.expiry, _ = parseISODuration(k.policy.ExpiryTime)
	}
	return sd
}

// generate makes the new version's key material and attributes; it needs
// no lock. With a policy expiryTime the version expires that long after now.
func (sd rotationSeed) generate(now time.Time) (*keyVersion, error) {
	kv, err := generate(sd.kty, sd.size, sd.curve)
	if err != nil {
		return nil, err
	}
	kv.ops, kv.tags, kv.enabled = sd.ops, sd.tags, true
	if sd.expiry > 0 {
		kv.exp = now.Add(sd.expiry).Truncate(time.Second)
	}
	return kv, nil
}

// rotate adds a new version to k like its latest one; the caller holds s.mu.
func (v *vaultState) rotate(k *keyState, now time.Time) (*keyVersion, error) {
	kv, err := k.seed().generate(now)
	if err != nil {
		return nil, err
	}
	if _, aerr := v.addVersion(k.name, kv, now); aerr != nil {
		return nil, fmt.Errorf("%w: %s", ErrConflict, aerr.msg)
	}
	return kv, nil
}

// autoRotate applies k's Rotate lifetime actions that are due at now, as
// the service would have in the background. A due trigger rotates once: a
// clock that jumps past several due dates yields one new version, not one
// per date.
func (v *vaultState) autoRotate(k *keyState, now time.Time) {
	if k.policy == nil {
		return
	}
	cur := k.latest()
	for _, a := range k.policy.LifetimeActions {
		if !strings.EqualFold(a.Action, "Rotate") {
			continue
		}
		due := false
		if d, err := parseISODuration(a.TimeAfterCreate); err == nil && !now.Before(cur.created.Add(d)) {
			due = true
		}
		if d, err := parseISODuration(a.TimeBeforeExpiry); err == nil && !cur.exp.IsZero() && !now.Before(cur.exp.Add(-d)) {
			due = true
		}
		if due {
			_, _ = v.rotate(k, now) // a failed generation leaves the key as it was
			return
		}
	}
}

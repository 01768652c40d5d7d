package envelope

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// DeriveTenantKey derives a 32-byte tenant key with HKDF-SHA256 from the
// concatenation customerShare ‖ platformShare (each exactly 32 bytes), an
// empty salt, and an info string that binds a label, the tenant id, the
// kind ([PlatformManaged] or [CustomerManaged]) and the epoch (1 or more).
// docs/format.md gives the exact info bytes. Either share alone determines
// nothing about the key.
//
// It returns an [*InputError] if a share is not 32 bytes, the tenant id is
// empty or longer than [MaxIDLen], the kind is unknown or the epoch is 0.
func DeriveTenantKey(customerShare, platformShare []byte, tenant string, kind uint8, epoch uint32) ([]byte, error) {
	if err := checkKey("customer share", customerShare); err != nil {
		return nil, err
	}
	if err := checkKey("platform share", platformShare); err != nil {
		return nil, err
	}
	if err := checkID("tenant id", tenant); err != nil {
		return nil, err
	}
	if kind != PlatformManaged && kind != CustomerManaged {
		return nil, &InputError{Arg: "kind", Reason: fmt.Sprintf("is %d; it must be %d (platform-managed) or %d (customer-managed)", kind, PlatformManaged, CustomerManaged)}
	}
	if epoch == 0 {
		return nil, &InputError{Arg: "epoch", Reason: "is 0; epochs start at 1"}
	}
	secret := make([]byte, 0, 2*KeySize)
	secret = append(append(secret, customerShare...), platformShare...)
	defer clear(secret)
	info := appendPrefix(make([]byte, 0, prefixSize+1+len(tenant)+1+4), typeTenantKey)
	info = append(info, byte(len(tenant)))
	info = append(info, tenant...)
	info = append(info, kind)
	info = binary.BigEndian.AppendUint32(info, epoch)
	key, err := hkdf.Key(sha256.New, secret, nil, string(info), KeySize)
	if err != nil {
		return nil, fmt.Errorf("envelope: deriving tenant key: %w", err)
	}
	return key, nil
}

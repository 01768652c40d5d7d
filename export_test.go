package byok

// CachedDEKs returns how many DEKs of tenant this keyring holds in memory.
func CachedDEKs(k *Keyring, tenant string) int {
	k.mu.RLock()
	defer k.mu.RUnlock()
	n := 0
	for _, d := range k.deks {
		if d.tenant == tenant {
			n++
		}
	}
	return n
}

// CachedKeyMaterial reports whether any tenant key of tenant has its
// material in memory.
func CachedKeyMaterial(k *Keyring, tenant string) bool {
	for _, t := range k.cached(tenant) {
		t.mu.Lock()
		has := t.aead != nil
		t.mu.Unlock()
		if has {
			return true
		}
	}
	return false
}

// WaitRefreshes waits for the background checks the keyring started.
func WaitRefreshes(k *Keyring) { k.refreshes.Wait() }

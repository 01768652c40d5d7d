package vault

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// maxResults reads the maxresults query parameter (1–25, default 25).
func maxResults(q url.Values) (int, *apiError) {
	s := q.Get("maxresults")
	if s == "" {
		return 25, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 25 {
		return 0, badParameter("Invalid value for maxresults: %s. It must be between 1 and 25.", s)
	}
	return n, nil
}

// page answers one page of items, with a nextLink that carries the
// api-version and the offset of the next page.
func (req *request) page(items []jsonItem) (result, *apiError) {
	q := req.r.URL.Query()
	size, aerr := maxResults(q)
	if aerr != nil {
		return result{}, aerr
	}
	start := 0
	if t := q.Get("$skiptoken"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			return result{}, badParameter("Invalid $skiptoken: %s.", t)
		}
		start = min(n, len(items))
	}
	end := min(start+size, len(items))
	list := jsonList{Value: items[start:end]}
	if end < len(items) {
		next := url.Values{"api-version": {q.Get("api-version")}, "$skiptoken": {strconv.Itoa(end)}, "maxresults": {strconv.Itoa(size)}}
		link := req.base + req.r.URL.Path + "?" + next.Encode()
		list.NextLink = &link
	}
	return result{body: list}, nil
}

func sortedKeys(m map[string]*keyState) []*keyState {
	out := make([]*keyState, 0, len(m))
	for _, k := range m {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b *keyState) int { return strings.Compare(strings.ToLower(a.name), strings.ToLower(b.name)) })
	return out
}

func (req *request) item(k *keyState, kv *keyVersion, kid string) jsonItem {
	it := jsonItem{Kid: kid, Attributes: req.vault.attributes(kv), Tags: kv.tags}
	if !k.deletedAt.IsZero() {
		it.RecoveryID = req.base + "/deletedkeys/" + k.name
		it.DeletedDate, it.ScheduledPurgeDate = unix(k.deletedAt), unix(k.purgeAt)
	}
	return it
}

func (s *Service) listKeys(req *request) (result, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	req.vault.purgeExpired(s.now())
	var items []jsonItem
	for _, k := range sortedKeys(req.vault.keys) {
		req.vault.autoRotate(k, s.now())
		items = append(items, req.item(k, k.latest(), req.base+"/keys/"+k.name))
	}
	return req.page(items)
}

func (s *Service) listKeyVersions(req *request) (result, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, _, aerr := s.lookup(req)
	if aerr != nil {
		return result{}, aerr
	}
	items := make([]jsonItem, 0, len(k.versions))
	for _, kv := range k.versions {
		items = append(items, req.item(k, kv, req.kid(k, kv)))
	}
	return req.page(items)
}

func (s *Service) deleteKey(req *request) (result, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, _, aerr := s.lookup(req)
	if aerr != nil {
		return result{}, aerr
	}
	req.vault.softDelete(k, s.now())
	return result{body: req.bundle(k, k.latest())}, nil
}

func (s *Service) deletedKey(req *request) (*keyState, *apiError) {
	req.vault.purgeExpired(s.now())
	k := req.vault.deleted[strings.ToLower(req.key)]
	if k == nil {
		return nil, deletedKeyNotFound(req.key)
	}
	return k, nil
}

func (s *Service) getDeletedKey(req *request) (result, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, aerr := s.deletedKey(req)
	if aerr != nil {
		return result{}, aerr
	}
	return result{body: req.bundle(k, k.latest())}, nil
}

func (s *Service) listDeletedKeys(req *request) (result, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	req.vault.purgeExpired(s.now())
	var items []jsonItem
	for _, k := range sortedKeys(req.vault.deleted) {
		items = append(items, req.item(k, k.latest(), req.base+"/keys/"+k.name))
	}
	return req.page(items)
}

func (s *Service) recoverDeletedKey(req *request) (result, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	req.vault.purgeExpired(s.now())
	k, aerr := req.vault.recover(req.key)
	if aerr != nil {
		return result{}, aerr
	}
	return result{body: req.bundle(k, k.latest())}, nil
}

func (s *Service) purgeDeletedKey(req *request) (result, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, aerr := s.deletedKey(req)
	if aerr != nil {
		return result{}, aerr
	}
	v := req.vault
	if v.cfg.PurgeProtection {
		return result{}, forbidden("", "Operation \"purge\" is not allowed because purge protection is enabled for this vault. Key Vault service will automatically purge it after the retention period has passed.\r\nVault: %s;location=%s", v.cfg.Name, v.cfg.location())
	}
	delete(v.deleted, strings.ToLower(k.name))
	return result{status: http.StatusNoContent}, nil
}

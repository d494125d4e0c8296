package github

import (
	"crypto/sha256"
	"net/http"
	"net/url"
	"sync"
)

// GitHub answers a conditional request whose If-None-Match names the
// current ETag with 304 Not Modified, and a 304 does not count against the
// token's rate limit ("Best practices for using the REST API"). The client
// remembers, per token and URL, the last 200 and its ETag, so that
// re-reading someone's memberships (silent renewal, refresh, the
// background recheck) costs nothing when they did not change.

const (
	// etagEntries bounds the remembered responses.
	etagEntries = 4096
	// etagMaxBody is the largest body remembered.
	etagMaxBody = 128 << 10
)

type etagKey [sha256.Size]byte

type etagEntry struct {
	etag   string
	header http.Header
	body   []byte
	url    *url.URL
}

// etagCache is a bounded memory of conditional-request answers.
type etagCache struct {
	mu sync.Mutex
	m  map[etagKey]*etagEntry
}

func newETagCache() *etagCache { return &etagCache{m: map[etagKey]*etagEntry{}} }

func etagKeyOf(token, rawURL string) etagKey {
	return sha256.Sum256([]byte(token + "\x00" + rawURL))
}

func (c *etagCache) get(k etagKey) *etagEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[k]
}

// put remembers a 200 with an ETag; when full, it forgets an eighth of
// the entries (the map's order: none is more precious than another).
func (c *etagCache) put(k etagKey, e *etagEntry) {
	if e.etag == "" || len(e.body) > etagMaxBody {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= etagEntries {
		n := 0
		for key := range c.m {
			delete(c.m, key)
			if n++; n >= etagEntries/8 {
				break
			}
		}
	}
	c.m[k] = e
}

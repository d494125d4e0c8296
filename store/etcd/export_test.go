package etcd

import "time"

// BucketWidth is bucketWidth, for tests.
func BucketWidth(life time.Duration) time.Duration { return bucketWidth(life) }

// SetPoolLimits lowers the keys one pooled lease holds and the leases the
// pool remembers, for tests.
func SetPoolLimits(s *Store, maxKeys, maxLeases int) {
	s.pool.mu.Lock()
	defer s.pool.mu.Unlock()
	s.pool.maxKeys, s.pool.maxLeases = maxKeys, maxLeases
}

// PooledLeases returns how many leases the pool holds.
func PooledLeases(s *Store) int {
	s.pool.mu.Lock()
	defer s.pool.mu.Unlock()
	return len(s.pool.leases)
}

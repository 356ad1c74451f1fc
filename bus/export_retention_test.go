package bus

import "time"

// SetRetentionLease shortens the pruner's lease for a test and returns the restore.
func SetRetentionLease(ttl, renew time.Duration) func() {
	oldTTL, oldRenew := retentionLeaseTTL, retentionRenew
	retentionLeaseTTL, retentionRenew = ttl, renew
	return func() { retentionLeaseTTL, retentionRenew = oldTTL, oldRenew }
}

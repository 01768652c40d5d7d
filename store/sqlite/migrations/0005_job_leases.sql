-- 0005: job leases, so that replicas sharing a store never run one
-- lifecycle job at once (lifecycle.Store.ClaimJob).
--
-- owner is the replica that holds or last held the lease ('' if none ever
-- claimed the job); lease_until is when that lease ends, in Unix
-- nanoseconds (NULL once released). Writes of a job whose stored owner is
-- another replica are refused.
ALTER TABLE lifecycle_jobs ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE lifecycle_jobs ADD COLUMN lease_until INTEGER;

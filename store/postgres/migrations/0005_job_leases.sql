-- 0005: job leases, so that replicas sharing this database never run one
-- lifecycle job at once (lifecycle.Store.ClaimJob).
--
-- owner is the replica that holds or last held the lease ('' if none ever
-- claimed the job); lease_until is when that lease ends, in Unix
-- nanoseconds (NULL once released). A claim is one conditional UPDATE of
-- the row; writes of a job whose stored owner is another replica are
-- refused, and a batch's job write comes first in its transaction, so it
-- holds the row lock a concurrent claim waits for.
ALTER TABLE lifecycle_jobs ADD COLUMN owner text NOT NULL DEFAULT '';
ALTER TABLE lifecycle_jobs ADD COLUMN lease_until bigint;

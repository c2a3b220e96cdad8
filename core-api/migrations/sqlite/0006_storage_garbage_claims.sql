-- Several core replicas sweep the storage garbage queue at once (issue 15). A sweep first claims
-- a batch of rows for itself for a while (a lease: `claimed_by`, `claimed_until`) and only works
-- on its own claims, so two replicas never retry the same object at the same time; rows of a
-- replica that died mid-sweep are claimable again once its lease has run out.
ALTER TABLE storage_garbage ADD COLUMN claimed_by TEXT;
ALTER TABLE storage_garbage ADD COLUMN claimed_until INTEGER;
CREATE INDEX storage_garbage_claim_idx ON storage_garbage (claimed_until, queued_at);
CREATE INDEX storage_garbage_claimed_by_idx ON storage_garbage (claimed_by);

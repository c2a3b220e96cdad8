-- Several core replicas sweep the storage garbage queue at once (issue 15). A sweep first claims
-- a batch of rows for itself for a while (a lease: `claimed_by`, `claimed_until`) and only works
-- on its own claims, so two replicas never retry the same object at the same time; rows of a
-- replica that died mid-sweep are claimable again once its lease has run out.
ALTER TABLE storage_garbage
    ADD COLUMN claimed_by    VARCHAR(64) NULL,
    ADD COLUMN claimed_until BIGINT      NULL,
    ADD KEY storage_garbage_claim_idx (claimed_until, queued_at),
    ADD KEY storage_garbage_claimed_by_idx (claimed_by);

-- An export that was cut off (the client stopped reading, or the core failed part-way) may be
-- started again within its hour: `cut` marks the last one as cut, `attempts` counts the starts of
-- the hour (export/repo.rs, `claim_slot`). A completed export still closes the hour.
ALTER TABLE data_exports ADD COLUMN attempts INTEGER NOT NULL DEFAULT 1;
ALTER TABLE data_exports ADD COLUMN cut INTEGER NOT NULL DEFAULT 0;
